//! Search over creative dimensions (headline × offer × call to action × …): one genetic step turns a
//! scored generation of variants into the next — keep the elite 10 %, breed 40 % by crossover, 40 %
//! by mutation, and draw 10 % at random so the search never stops looking elsewhere.
//!
//! A genome is one level index per dimension; the content agent turns it into text. The step is
//! seeded, so the same generation and seed always breed the same children. This file never writes
//! copy and never judges it: fitness comes in from observed performance.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One creative dimension and its levels, e.g. `offer`: [`10% off`, `free shipping`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    pub name: String,
    pub levels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreativeSpace {
    pub dimensions: Vec<Dimension>,
}

/// One level index per dimension, in the space's dimension order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Genome(pub Vec<usize>);

/// Shares of the next generation by origin. They are normalised, so only their ratios matter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneticMix {
    pub elite: f64,
    pub crossover: f64,
    pub mutation: f64,
    pub random: f64,
}

impl Default for GeneticMix {
    fn default() -> Self {
        Self {
            elite: 0.1,
            crossover: 0.4,
            mutation: 0.4,
            random: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeneticError {
    #[error("the creative space has no dimensions")]
    NoDimensions,
    #[error("dimension `{0}` has no levels")]
    EmptyDimension(String),
    #[error("no scored variants to breed from")]
    EmptyGeneration,
    #[error("variant {index}: genome has {got} genes but the space has {expected} dimensions")]
    WrongLength {
        index: usize,
        got: usize,
        expected: usize,
    },
    #[error(
        "variant {index}: level {level} of dimension `{dimension}` does not exist (it has {levels})"
    )]
    UnknownLevel {
        index: usize,
        dimension: String,
        level: usize,
        levels: usize,
    },
    #[error("variant {index}: fitness must be a finite number, got {fitness}")]
    BadFitness { index: usize, fitness: f64 },
    #[error(
        "mix share `{name}` must be a finite number of at least 0 (and the shares must not all be 0), got {value}"
    )]
    BadMix { name: &'static str, value: f64 },
}

impl CreativeSpace {
    pub fn validate(&self) -> Result<(), GeneticError> {
        if self.dimensions.is_empty() {
            return Err(GeneticError::NoDimensions);
        }
        match self.dimensions.iter().find(|d| d.levels.is_empty()) {
            Some(d) => Err(GeneticError::EmptyDimension(d.name.clone())),
            None => Ok(()),
        }
    }

    /// Each dimension's levels by its name, as a decision records the space.
    pub fn levels(&self) -> BTreeMap<String, Vec<String>> {
        self.dimensions
            .iter()
            .map(|d| (d.name.clone(), d.levels.clone()))
            .collect()
    }

    fn check(&self, index: usize, genome: &Genome) -> Result<(), GeneticError> {
        if genome.0.len() != self.dimensions.len() {
            return Err(GeneticError::WrongLength {
                index,
                got: genome.0.len(),
                expected: self.dimensions.len(),
            });
        }
        for (d, &level) in self.dimensions.iter().zip(&genome.0) {
            if level >= d.levels.len() {
                return Err(GeneticError::UnknownLevel {
                    index,
                    dimension: d.name.clone(),
                    level,
                    levels: d.levels.len(),
                });
            }
        }
        Ok(())
    }

    fn random_genome(&self, rng: &mut ChaCha8Rng) -> Genome {
        Genome(
            self.dimensions
                .iter()
                .map(|d| rng.random_range(0..d.levels.len().max(1)))
                .collect(),
        )
    }
}

/// Breed the next generation of `size` genomes from a scored generation (higher fitness is
/// better), deterministically for a given `seed`.
pub fn genetic_step(
    space: &CreativeSpace,
    scored: &[(Genome, f64)],
    size: usize,
    mix: GeneticMix,
    seed: u64,
) -> Result<Vec<Genome>, GeneticError> {
    space.validate()?;
    if scored.is_empty() {
        return Err(GeneticError::EmptyGeneration);
    }
    for (index, (genome, fitness)) in scored.iter().enumerate() {
        space.check(index, genome)?;
        if !fitness.is_finite() {
            return Err(GeneticError::BadFitness {
                index,
                fitness: *fitness,
            });
        }
    }
    let shares = [
        ("elite", mix.elite),
        ("crossover", mix.crossover),
        ("mutation", mix.mutation),
        ("random", mix.random),
    ];
    for (name, value) in shares {
        if !(value.is_finite() && value >= 0.0) {
            return Err(GeneticError::BadMix { name, value });
        }
    }
    let sum = mix.elite + mix.crossover + mix.mutation + mix.random;
    if sum <= 0.0 {
        return Err(GeneticError::BadMix {
            name: "elite",
            value: mix.elite,
        });
    }

    let mut ranked: Vec<&(Genome, f64)> = scored.iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let count = |share: f64| ((share / sum) * size as f64).round() as usize;
    // At least one elite whenever there is room: the best known variant must never be lost.
    let elite = count(mix.elite)
        .max(usize::from(size > 0))
        .min(ranked.len())
        .min(size);
    let crossover = count(mix.crossover).min(size - elite);
    let mutation = count(mix.mutation).min(size - elite - crossover);
    let random = size - elite - crossover - mutation;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut next: Vec<Genome> = ranked.iter().take(elite).map(|(g, _)| g.clone()).collect();
    for _ in 0..crossover {
        let (Some(mother), Some(father)) =
            (tournament(&ranked, &mut rng), tournament(&ranked, &mut rng))
        else {
            break;
        };
        let child = mother
            .0
            .iter()
            .zip(&father.0)
            .map(|(&m, &f)| if rng.random_bool(0.5) { m } else { f })
            .collect();
        next.push(Genome(child));
    }
    for _ in 0..mutation {
        let Some(parent) = tournament(&ranked, &mut rng) else {
            break;
        };
        let mut child = parent.clone();
        mutate(space, &mut child, &mut rng);
        next.push(child);
    }
    for _ in 0..random {
        next.push(space.random_genome(&mut rng));
    }
    Ok(next)
}

/// Binary tournament: the fitter of two random picks. `ranked` is sorted best first; `None` only
/// when it is empty, which `genetic_step` has already refused.
fn tournament<'a>(ranked: &[&'a (Genome, f64)], rng: &mut ChaCha8Rng) -> Option<&'a Genome> {
    if ranked.is_empty() {
        return None;
    }
    let i = rng.random_range(0..ranked.len());
    let j = rng.random_range(0..ranked.len());
    // Lower index is fitter in a best-first list.
    ranked.get(i.min(j)).map(|entry| &entry.0)
}

/// Change one gene to a different level, choosing among dimensions that have more than one level.
fn mutate(space: &CreativeSpace, genome: &mut Genome, rng: &mut ChaCha8Rng) {
    let open: Vec<usize> = space
        .dimensions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.levels.len() > 1)
        .map(|(i, _)| i)
        .collect();
    if open.is_empty() {
        return;
    }
    let Some(&gene) = open.get(rng.random_range(0..open.len())) else {
        return;
    };
    let (Some(levels), Some(current)) = (
        space.dimensions.get(gene).map(|d| d.levels.len()),
        genome.0.get_mut(gene),
    ) else {
        return;
    };
    // Shift by 1..levels-1 so the new level always differs from the old.
    *current = (*current + rng.random_range(1..levels)) % levels;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> CreativeSpace {
        let dim = |name: &str, levels: &[&str]| Dimension {
            name: name.into(),
            levels: levels.iter().map(|s| s.to_string()).collect(),
        };
        CreativeSpace {
            dimensions: vec![
                dim("headline", &["a", "b", "c"]),
                dim("offer", &["10%", "free"]),
                dim("cta", &["buy", "try", "go"]),
            ],
        }
    }

    #[test]
    fn mix_and_elite() {
        let scored: Vec<(Genome, f64)> = (0..10)
            .map(|i| (Genome(vec![i % 3, i % 2, i % 3]), i as f64))
            .collect();
        let next = genetic_step(&space(), &scored, 20, GeneticMix::default(), 5).unwrap();
        assert_eq!(next.len(), 20);
        // Elite: 10 % of 20 = 2, the two fittest, best first.
        assert_eq!(next[0], scored[9].0);
        assert_eq!(next[1], scored[8].0);
        for g in &next {
            assert!(space().check(0, g).is_ok());
        }
        assert_eq!(
            next,
            genetic_step(&space(), &scored, 20, GeneticMix::default(), 5).unwrap()
        );
    }

    #[test]
    fn bad_genome_is_named() {
        let err = genetic_step(
            &space(),
            &[(Genome(vec![0, 5, 0]), 1.0)],
            4,
            GeneticMix::default(),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`offer`"), "{err}");
    }
}
