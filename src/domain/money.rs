//! Money as people read it: rounded to the currency's minor unit (cents, or whole won and yen),
//! written with thousands separators and the currency code, never as 7.3e-12 or 1.8e12.
//!
//! The maths keeps full precision; only what is shown or stored as a figure for people (plans'
//! amounts, reasons) goes through here, and [`round_to`] rounds the other figures people read
//! (shares, counts, ratios) the same way.

/// `x` rounded to `places` decimal places.
pub fn round_to(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// Digits after the decimal point of `currency`'s minor unit (ISO 4217): 0 for the currencies
/// without one campaignd is used with, 2 for the rest.
pub fn minor_digits(currency: &str) -> usize {
    match currency {
        "KRW" | "JPY" | "VND" | "CLP" | "ISK" | "UGX" | "PYG" => 0,
        _ => 2,
    }
}

/// `amount` rounded to the minor unit of `currency`; a residue below half of it (the 7e-12 left
/// over by floating-point sums) becomes 0, and -0 becomes 0.
pub fn round_money(amount: f64, currency: &str) -> f64 {
    if !amount.is_finite() {
        return amount;
    }
    let rounded = round_to(amount, minor_digits(currency) as i32);
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// `amount` rounded up to the minor unit of `currency`: for an amount that must be enough (a
/// budget to raise to), where rounding to the nearest could fall a fraction short.
pub fn ceil_money(amount: f64, currency: &str) -> f64 {
    if !amount.is_finite() {
        return amount;
    }
    let scale = 10f64.powi(minor_digits(currency) as i32);
    (amount * scale).ceil() / scale
}

/// `amount` in `currency` for a reason or a table: "1,234.50 USD", "12,000 KRW".
pub fn money_text(amount: f64, currency: &str) -> String {
    format!("{} {currency}", amount_text(amount, minor_digits(currency)))
}

/// `amount` with `digits` decimals and a comma between thousands: "1,234.50".
pub fn amount_text(amount: f64, digits: usize) -> String {
    if !amount.is_finite() {
        return amount.to_string();
    }
    let rounded = round_to(amount, digits as i32);
    let text = format!("{:.digits$}", rounded.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::with_capacity(text.len() + whole.len() / 3 + 1);
    if rounded < 0.0 {
        grouped.push('-');
    }
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if !fraction.is_empty() {
        grouped.push('.');
        grouped.push_str(fraction);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residues_vanish_and_amounts_round_to_the_minor_unit() {
        assert_eq!(round_money(7.275957614183426e-12, "USD"), 0.0);
        assert_eq!(round_money(-1e-13, "USD").to_string(), "0");
        assert_eq!(round_money(12.345, "USD"), 12.35);
        assert_eq!(round_money(12_345.6, "KRW"), 12_346.0);
        assert!(round_money(f64::NAN, "USD").is_nan());
        assert_eq!(ceil_money(243_284.620_1, "USD"), 243_284.63);
        assert_eq!(ceil_money(12_000.01, "KRW"), 12_001.0);
    }

    #[test]
    fn text_has_separators_and_the_currency() {
        assert_eq!(
            money_text(1_825_014_198_019.557, "USD"),
            "1,825,014,198,019.56 USD"
        );
        assert_eq!(money_text(98.0, "USD"), "98.00 USD");
        assert_eq!(money_text(12_000.4, "KRW"), "12,000 KRW");
        assert_eq!(money_text(-1234.5, "EUR"), "-1,234.50 EUR");
        assert_eq!(money_text(7e-12, "USD"), "0.00 USD");
        assert_eq!(amount_text(999.999, 2), "1,000.00");
        assert_eq!(amount_text(100.0, 0), "100");
    }
}
