//! Consent in and results back, through the real binary with `[market] source = "api"`: a batch
//! of consent events is checked per item and recorded under pseudonyms only; a retried batch
//! counts once; tenants and roles are kept apart; after an erasure nothing in the knowledge base
//! (any of its trees) or its export leads from the person to their records; a consent CSV and an
//! ad platform's daily export go in through `campaignd consents import` and `campaignd
//! observations import`, run twice without recording anything twice; a day's SMS send list holds
//! only the segment's members whose own consent passes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{
    Process, campaignd, copy_shipped, kr_goal_toml, run, sim_start, us_goal_toml, wait_for, write,
};

const OPERATOR: &str = "consents-operator-secret-0001";
const GLOBEX: &str = "consents-globex-secret-000001";
const GLOBEX_READER: &str = "consents-globex-reader-00001";
const ACME: &str = "consents-acme-secret-00000001";
const PHONE: &str = "010-1234-5678";
const EMAIL: &str = "Kim.Min@Example.com";

fn deployment(base: &Path) -> PathBuf {
    copy_shipped(base, "agents");
    copy_shipped(base, "config/tenants");
    write(
        base,
        "config/campaigns/globex_fall.toml",
        &us_goal_toml("globex_fall", 100_000, 30),
    );
    let abs = |p: &str| base.join(p).display().to_string();
    write(
        base,
        "config/campaignd.toml",
        &format!(
            "[daemon]\ndata_dir = {:?}\nagents_dir = {:?}\ncampaigns_dir = {:?}\nshutdown_timeout_secs = 10\n\n\
             [clock]\nmode = \"manual\"\nstart = {}\n\n\
             [market]\nsource = \"api\"\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\n\n\
             [[api.tokens]]\nname = \"ops\"\ntoken = \"{OPERATOR}\"\n\n\
             [[api.tokens]]\nname = \"globex-marketer\"\ntoken = \"{GLOBEX}\"\ntenant = \"globex\"\nrole = \"approver\"\n\n\
             [[api.tokens]]\nname = \"globex-viewer\"\ntoken = \"{GLOBEX_READER}\"\ntenant = \"globex\"\nrole = \"read-only\"\n\n\
             [[api.tokens]]\nname = \"acme\"\ntoken = \"{ACME}\"\ntenant = \"acme\"\n",
            abs("data"),
            abs("agents"),
            abs("config/campaigns"),
            sim_start().to_rfc3339(),
        ),
    )
}

fn start(config: &Path) -> (Process, SocketAddr) {
    let mut command = campaignd();
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(config);
    let daemon = Process::spawn(&mut command, None);
    let ready = daemon.wait_for_lines("`API listening`", 1, Duration::from_secs(30), |l| {
        l.contains("API listening")
    });
    let line: Value = serde_json::from_str(&ready[0]).expect("a JSON log line");
    let addr = line["fields"]["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line}"));
    (daemon, addr)
}

/// `method path` with `token`, an optional `Idempotency-Key` and JSON body: the status, whether
/// the answer is a replay, and the JSON answer.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, bool, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let url = format!("http://{addr}{path}");
    let auth = format!("Bearer {token}");
    let response = match (method, body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
        ("DELETE", _) => agent.delete(&url).header("Authorization", &auth).call(),
        (_, body) => {
            let mut post = agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json");
            if let Some(key) = key {
                post = post.header("Idempotency-Key", key);
            }
            post.send(body.cloned().unwrap_or(Value::Null).to_string())
        }
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotency-replayed").is_some();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        replayed,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn sha256_of(text: &str) -> String {
    use sha2::Digest;
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn grant(subject: &str, channel: &str, jurisdiction: &str) -> Value {
    json!({
        "subject": subject, "channel": channel, "purpose": "marketing",
        "granted_at": "2026-08-01T09:00:00Z", "source": "web_form",
        "text_hash": format!("sha256:{}", sha256_of("광고성 정보 수신에 동의합니다")),
        "night_consent": false, "jurisdiction": jurisdiction
    })
}

/// Every (tree, key, value) of the knowledge base's sled database, read after the daemon stopped.
fn every_entry(kb: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let db = sled::open(kb).expect("the knowledge base opens");
    let mut entries = Vec::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).expect("a tree");
        for entry in tree.iter() {
            let (key, value) = entry.expect("an entry");
            entries.push((
                String::from_utf8_lossy(&name).into_owned(),
                key.to_vec(),
                value.to_vec(),
            ));
        }
    }
    entries
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn consents_are_kept_under_pseudonyms_and_an_erasure_leaves_nothing_that_leads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = deployment(dir.path());
    let (mut daemon, addr) = start(&config);

    // One good grant per channel, and two bad items: a channel campaignd does not know and a grant
    // in the future.
    let batch = json!({ "consents": [
        grant(PHONE, "sms", "KR"),
        grant(EMAIL, "email", "EU"),
        grant("010-9999-0000", "fax", "KR"),
        { "subject": "010-5555-0000", "channel": "sms", "purpose": "marketing",
          "granted_at": "2099-01-01T00:00:00Z", "source": "web_form", "jurisdiction": "KR" },
    ]});
    let (status, replayed, answer) = request(
        addr,
        "POST",
        "/v1/consents",
        GLOBEX,
        Some("batch-1"),
        Some(&batch),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(!replayed);
    assert_eq!(
        (answer["recorded"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(2)),
        "{answer}"
    );
    assert_eq!(answer["tenant"], "globex");
    assert_eq!(answer["items"][2]["problems"][0]["code"], "invalid_item");
    assert!(
        answer["items"][2]["problems"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("channel") && m.contains("fax")),
        "{answer}"
    );
    assert_eq!(answer["items"][3]["problems"][0]["code"], "invalid_consent");
    assert!(
        answer["items"][3]["problems"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("granted_at")),
        "{answer}"
    );
    let text = answer.to_string();
    for raw in [PHONE, "01012345678", "5555", "9999", "kim.min"] {
        assert!(!text.to_lowercase().contains(raw), "{raw} in {text}");
    }

    // The same key and body replays the answer; the same events without a key are duplicates.
    let (status, replayed, again) = request(
        addr,
        "POST",
        "/v1/consents",
        GLOBEX,
        Some("batch-1"),
        Some(&batch),
    );
    assert_eq!((status, replayed), (200, true));
    assert_eq!(again, answer);
    let (_, _, duplicates) = request(addr, "POST", "/v1/consents", GLOBEX, None, Some(&batch));
    assert_eq!(duplicates["duplicates"], 2, "{duplicates}");
    assert_eq!(duplicates["recorded"], 0, "{duplicates}");

    // Roles and tenants: a reader cannot record, another tenant cannot read or name globex, an
    // operator must name the tenant.
    let (status, _, _) = request(
        addr,
        "POST",
        "/v1/consents",
        GLOBEX_READER,
        None,
        Some(&batch),
    );
    assert_eq!(status, 403);
    let subject_path = "/v1/consents/01012345678";
    let (status, _, body) = request(
        addr,
        "GET",
        "/v1/consents/01012345678?tenant=globex",
        ACME,
        None,
        None,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_tenant"))
    );
    let (status, _, body) = request(addr, "GET", subject_path, ACME, None, None);
    assert_eq!(
        status, 404,
        "acme has no such tenant's campaign or subject: {body}"
    );
    let (status, _, body) = request(addr, "GET", subject_path, OPERATOR, None, None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_tenant"))
    );

    // The subject written another way is the same person; a withdrawal wins.
    let (status, _, found) = request(
        addr,
        "GET",
        &format!("{subject_path}?tenant=globex"),
        OPERATOR,
        None,
        None,
    );
    assert_eq!(status, 200, "{found}");
    let pseudonym = found["pseudonym"].as_str().expect("a pseudonym").to_owned();
    assert!(pseudonym.starts_with("subject:"), "{pseudonym}");
    assert_eq!(found["consents"][0]["channel"], "sms");
    assert_eq!(found["consents"][0]["subject"], pseudonym.as_str());
    let withdrawal = json!({ "consents": [{
        "subject": "kim.min@example.com", "channel": "email", "purpose": "marketing",
        "withdrawn_at": "2026-08-20T00:00:00Z", "jurisdiction": "EU" }] });
    let (_, _, withdrawn) = request(
        addr,
        "POST",
        "/v1/consents",
        GLOBEX,
        None,
        Some(&withdrawal),
    );
    assert_eq!(withdrawn["recorded"], 1, "{withdrawn}");
    let (_, _, email) = request(
        addr,
        "GET",
        "/v1/consents/kim.min%40example.com",
        GLOBEX,
        None,
        None,
    );
    assert_eq!(
        email["consents"][0]["withdrawn_at"], "2026-08-20T00:00:00Z",
        "{email}"
    );

    // Erasure: the consent stops, the link goes, and a second erasure finds nothing.
    let (status, _, erased) = request(
        addr,
        "DELETE",
        "/v1/consents/%2B82%2010-1234-5678",
        GLOBEX,
        None,
        None,
    );
    assert_eq!(
        status, 404,
        "a different number is a different subject: {erased}"
    );
    let (status, _, erased) = request(
        addr,
        "DELETE",
        "/v1/consents/010%201234%205678",
        GLOBEX_READER,
        None,
        None,
    );
    assert_eq!(status, 403, "{erased}");
    let (status, _, erased) = request(
        addr,
        "DELETE",
        "/v1/consents/010%201234%205678",
        GLOBEX,
        None,
        None,
    );
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["channels"], json!(["sms"]));
    let (status, _, _) = request(addr, "DELETE", subject_path, GLOBEX, None, None);
    assert_eq!(status, 404);
    let (status, _, _) = request(addr, "GET", subject_path, GLOBEX, None, None);
    assert_eq!(status, 404);
    let log = daemon.all_lines().join("\n");
    assert!(
        !log.contains("01012345678") && !log.contains(PHONE),
        "the log names the subject"
    );
    daemon.terminate(Duration::from_secs(30));

    // Nothing in any tree of the knowledge base holds the number, or the key it was filed under,
    // and the erased pseudonym is named only by the decisions about it.
    let kb = dir.path().join("data/kb");
    let entries = every_entry(&kb);
    let secret = entries
        .iter()
        .find(|(tree, key, _)| tree == "aux/subjects" && key.as_slice() == b"t\0globex")
        .map(|(_, _, value)| value.clone())
        .expect("globex's secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("a key");
    mac.update(b"01012345678");
    let lookup = mac.finalize().into_bytes().to_vec();
    for (tree, key, value) in &entries {
        for bytes in [key, value] {
            assert!(
                !contains(bytes, b"01012345678") && !contains(bytes, PHONE.as_bytes()),
                "the number in {tree}"
            );
            assert!(
                !contains(bytes, &lookup),
                "the erased subject's lookup key in {tree}"
            );
        }
        if tree.starts_with("aux/") {
            assert!(
                !contains(value, pseudonym.as_bytes()),
                "the pseudonym in {tree}"
            );
        }
    }
    let export = run(
        campaignd().args(["kb", "export", "--config"]).arg(&config),
        None,
    );
    assert_eq!(export.code, Some(0), "{}", export.stderr);
    let naming: Vec<Value> = export
        .stdout
        .lines()
        .filter(|line| line.contains(&pseudonym))
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect();
    assert!(!export.stdout.contains("01012345678") && !export.stdout.contains(PHONE));
    let kinds: Vec<&str> = naming.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"erasure") && kinds.iter().all(|k| ["consent", "erasure"].contains(k)),
        "{kinds:?}"
    );

    // After a restart the erased subject is still gone, and the other one still there.
    let (mut daemon, addr) = start(&config);
    let (status, _, _) = request(addr, "GET", subject_path, GLOBEX, None, None);
    assert_eq!(status, 404);
    let (status, _, email) = request(
        addr,
        "GET",
        "/v1/consents/KIM.MIN%40EXAMPLE.COM",
        GLOBEX,
        None,
        None,
    );
    assert_eq!(status, 200, "{email}");
    daemon.terminate(Duration::from_secs(30));
}

#[test]
fn a_consent_csv_and_a_daily_export_go_in_once_however_often_they_are_imported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = deployment(dir.path());
    let (mut daemon, addr) = start(&config);
    let import = |what: &str, file: &Path| {
        run(
            campaignd()
                .args([what, "import", "--config"])
                .arg(&config)
                .arg(file)
                .env("CAMPAIGND_TOKEN", GLOBEX)
                .env("CAMPAIGND__API__LISTEN", addr.to_string()),
            None,
        )
    };

    // Quoted cells with commas, an empty optional cell, and a row whose channel is wrong.
    let hash = sha256_of("광고성 정보 수신에 동의합니다");
    let consents = write(
        dir.path(),
        "consents.csv",
        &format!(
            "subject,channel,purpose,jurisdiction,granted_at,source,text_hash,night_consent,withdrawn_at\n\
             010-1111-2222,sms,marketing,KR,2026-08-01T09:00:00Z,\"web_form, spring\",sha256:{hash},yes,\n\
             \"lee@example.com\",email,marketing,EU,2026-08-02T09:00:00Z,paper,{hash},no,\n\
             010-3333-4444,fax,marketing,KR,2026-08-01T09:00:00Z,web_form,,,\n"
        ),
    );
    let first = import("consents", &consents);
    assert_eq!(
        first.code,
        Some(1),
        "a rejected row: {}{}",
        first.stdout,
        first.stderr
    );
    assert!(
        first
            .stdout
            .contains("2 recorded, 0 duplicates, 1 rejected"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("line 4: field `channel`"),
        "{}",
        first.stdout
    );
    assert!(
        !first.stdout.contains("3333"),
        "the subject is printed: {}",
        first.stdout
    );
    let (status, _, found) = request(addr, "GET", "/v1/consents/01011112222", GLOBEX, None, None);
    assert_eq!(status, 200, "{found}");
    let record = &found["consents"][0];
    assert_eq!(record["source"], "web_form, spring");
    assert_eq!(record["night_consent"], true);
    assert_eq!(record["text_hash"], format!("sha256:{hash}"));
    let again = import("consents", &consents);
    assert_eq!(
        again.stdout, first.stdout,
        "the second import replays the first"
    );

    // A daily export of observations: a good row per variant, and one with more clicks than
    // impressions.
    let arms = wait_for(
        "the experiment of globex_fall",
        Duration::from_secs(120),
        || {
            let (_, _, page) = request(
                addr,
                "GET",
                "/v1/campaigns/globex_fall/decisions?limit=1000",
                GLOBEX,
                None,
                None,
            );
            page["decisions"]
                .as_array()?
                .iter()
                .find(|d| d["kind"] == "experiment")
                .and_then(|d| d["choice"]["arms"].as_array().cloned())
        },
    );
    let day = sim_start();
    let window = format!(
        "{},{}",
        day.to_rfc3339(),
        (day + chrono::Duration::days(1)).to_rfc3339()
    );
    let mut csv = String::from(
        "campaign,day,channel,segment,variant,window_start,window_end,impressions,clicks,conversions,spend\n",
    );
    for arm in arms.iter().take(2) {
        csv += &format!(
            "globex_fall,0,{},{},\"{}\",{window},1000,40,3,12.5\n",
            arm["channel"].as_str().unwrap_or_default(),
            arm["segment"].as_str().unwrap_or_default(),
            arm["variant"].as_str().unwrap_or_default()
        );
    }
    let arm = &arms[2];
    csv += &format!(
        "globex_fall,0,{},{},\"{}\",{window},10,40,3,1\n",
        arm["channel"].as_str().unwrap_or_default(),
        arm["segment"].as_str().unwrap_or_default(),
        arm["variant"].as_str().unwrap_or_default()
    );
    let export = write(dir.path(), "export.csv", &csv);
    let first = import("observations", &export);
    assert_eq!(first.code, Some(1), "{}{}", first.stdout, first.stderr);
    assert!(
        first
            .stdout
            .contains("globex_fall day 0 (3 rows): 2 recorded, 0 duplicates, 1 rejected"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("line 4:") && first.stdout.contains("clicks"),
        "{}",
        first.stdout
    );
    let again = import("observations", &export);
    assert_eq!(
        again.stdout, first.stdout,
        "the second import replays the first"
    );

    // A file campaignd cannot use is refused before anything is sent, naming what is wrong.
    let bad = write(
        dir.path(),
        "bad.csv",
        "campaign,day,cost\nglobex_fall,0,1\n",
    );
    let refused = import("observations", &bad);
    assert_eq!(refused.code, Some(2));
    assert!(
        refused.stderr.contains("unknown column `cost`"),
        "{}",
        refused.stderr
    );
    daemon.terminate(Duration::from_secs(30));
}

/// A KR SMS campaign on `[market] source = "api"`, autonomous, its SMS going to a `files`
/// gateway at 0.5 USD a message; the accelerated clock (a day every two seconds) reaches the
/// campaign's start eight seconds after the daemon starts, time enough to send the consents in.
fn send_list_deployment(base: &Path) -> PathBuf {
    copy_shipped(base, "agents");
    copy_shipped(base, "config/tenants");
    let goal = kr_goal_toml("kr_sends", 1_000_000, 30);
    write(
        base,
        "config/campaigns/kr_sends.toml",
        &format!(
            "autonomy = \"autonomous\"\nconnectors = {{ sms = \"gateway\" }}\nsend_prices = {{ sms = 0.5 }}\n{goal}"
        ),
    );
    let abs = |p: &str| base.join(p).display().to_string();
    write(
        base,
        "config/campaignd.toml",
        &format!(
            "[daemon]\ndata_dir = {:?}\nagents_dir = {:?}\ncampaigns_dir = {:?}\nshutdown_timeout_secs = 10\n\n\
             [clock]\nmode = \"accelerated\"\nfactor = 43200.0\nstart = {}\n\n\
             [market]\nsource = \"api\"\n\n\
             [connectors.gateway]\nkind = \"files\"\ndir = {:?}\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\n\n\
             [[api.tokens]]\nname = \"ops\"\ntoken = \"{OPERATOR}\"\n",
            abs("data"),
            abs("agents"),
            abs("config/campaigns"),
            (sim_start() - chrono::Duration::days(4)).to_rfc3339(),
            abs("sends"),
        ),
    )
}

/// Every row of the SMS send lists the gateway folder holds, as (header → value) maps.
fn send_list_rows(folder: &Path) -> Vec<BTreeMap<String, String>> {
    let mut rows = Vec::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                stack.push(path);
            } else if name.contains("-sms-buys-") && name.ends_with(".csv") {
                let mut reader = csv::Reader::from_path(&path).expect("a CSV");
                let headers = reader.headers().expect("a header").clone();
                for record in reader.records() {
                    let record = record.expect("a row");
                    rows.push(
                        headers
                            .iter()
                            .zip(record.iter())
                            .map(|(h, v)| (h.to_owned(), v.to_owned()))
                            .collect(),
                    );
                }
            }
        }
    }
    rows
}

#[test]
fn a_days_send_list_holds_only_members_whose_own_consent_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = send_list_deployment(dir.path());
    let (mut daemon, addr) = start(&config);

    let member = |subject: &str, segments: &[&str]| {
        let mut item = grant(subject, "sms", "KR");
        item["segments"] = json!(segments);
        item
    };
    let mut pushed = member("010-3333-0003", &["university_students"]);
    pushed["source"] = json!("os_push_permission");
    let mut withdrawal = member("010-2222-0002", &["university_students"]);
    withdrawal["withdrawn_at"] = json!("2026-08-15T09:00:00Z");
    let batch = json!({ "tenant": "acme/kr_retail", "consents": [
        member("010-1111-0001", &["university_students"]),
        member("010-2222-0002", &["university_students"]),
        withdrawal,
        pushed,
        member("010-4444-0004", &["graduate_students"]),
        member("010-5555-0005", &["university_students"]),
    ]});
    let (status, _, answer) = request(
        addr,
        "POST",
        "/v1/consents",
        OPERATOR,
        Some("members-1"),
        Some(&batch),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["recorded"], 6, "{answer}");
    // What the gateway's own system maps back to a phone number: the pseudonym a subject's
    // consents are kept under (the batch's answer names none, so its replay copy names none).
    let pseudonym = |subject: &str| {
        let (status, _, found) = request(
            addr,
            "GET",
            &format!("/v1/consents/{subject}?tenant=acme/kr_retail"),
            OPERATOR,
            None,
            None,
        );
        assert_eq!(status, 200, "{found}");
        found["pseudonym"].as_str().expect("a pseudonym").to_owned()
    };
    let (listed, withdrawn, erased) = (
        pseudonym("010-1111-0001"),
        pseudonym("010-2222-0002"),
        pseudonym("010-5555-0005"),
    );
    let (status, _, erasure) = request(
        addr,
        "DELETE",
        "/v1/consents/010-5555-0005?tenant=acme/kr_retail",
        OPERATOR,
        None,
        None,
    );
    assert_eq!(status, 200, "{erasure}");

    // Three campaign days' send lists.
    let sends = dir.path().join("sends");
    let rows = wait_for(
        "three days of SMS send lists",
        Duration::from_secs(120),
        || {
            let rows = send_list_rows(&sends);
            let days: std::collections::BTreeSet<String> =
                rows.iter().map(|r| r["day"].clone()).collect();
            (days.len() >= 3).then_some(rows)
        },
    );
    for row in &rows {
        assert_eq!(
            row["recipient"], listed,
            "only the member with a valid opt-in: {row:?}"
        );
        assert_eq!(row["segment"], "university_students");
        assert!(row["send_at"].ends_with("T10:00:00+09:00"), "{row:?}");
        assert!(!row["variant"].is_empty());
    }
    for other in [&withdrawn, &erased] {
        assert!(rows.iter().all(|r| &r["recipient"] != other));
    }

    // Each list is a decision that says who was left out and why, naming nobody.
    let (status, _, decisions) = request(
        addr,
        "GET",
        "/v1/campaigns/kr_sends/decisions?agent=compliance&limit=1000",
        OPERATOR,
        None,
        None,
    );
    assert_eq!(status, 200, "{decisions}");
    let lists: Vec<&Value> = decisions["decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["kind"] == "send_list")
        .collect();
    assert!(lists.len() >= 3, "{decisions}");
    let first = lists[0];
    assert_eq!(first["choice"]["excluded"]["withdrawn"], 1, "{first}");
    assert_eq!(first["choice"]["excluded"]["KR-OPTIN"], 1, "{first}");
    assert_eq!(
        first["choice"]["listed"]
            .as_object()
            .map(|l| l.values().filter_map(Value::as_u64).sum::<u64>()),
        Some(1),
        "{first}"
    );
    assert!(
        !first.to_string().contains(&listed),
        "counts only, never who"
    );
    // The creatives were approved with their consent left to the send lists.
    let reviews: Vec<&Value> = decisions["decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["kind"] == "review" && d["choice"]["approved"] == true)
        .collect();
    assert!(
        reviews.iter().any(|r| r["reason"]
            .as_str()
            .is_some_and(|t| t.contains("send list"))),
        "{decisions}"
    );
    daemon.terminate(Duration::from_secs(30));
}
