//! Every few days, the next generation of creative combinations, bred per content cell (see
//! [`creative_pools`]). Recorded even when no cell can be bred, with the reason; the combinations
//! wait in the experiment until the orchestrator has content write them and compliance review
//! them.

use std::collections::BTreeMap;

use super::Day;
use crate::agents::decisions::{self as kinds, GeneticCell, GeneticChoice, GeneticInputs};
use crate::agents::ledger::Draft;
use crate::domain::content::Bred;
use crate::domain::optimization::{OptimizationPlaybook, creative_pools, genetic_seed};
use crate::runtime::AgentError;

/// The fittest arms of each cell listed as the step's alternatives.
const PARENTS_SHOWN: usize = 3;

impl Day<'_> {
    pub(super) async fn genetic(
        &mut self,
        playbook: &OptimizationPlaybook,
    ) -> Result<(), AgentError> {
        let Some(exp) = self.experiment() else {
            return Ok(());
        };
        let settings = playbook.genetic;
        let mut cells = Vec::new();
        let mut bred = Vec::new();
        let mut unbred = Vec::new();
        let mut parents = Vec::new();
        for pool in creative_pools(exp) {
            let seed = genetic_seed(self.goal.id.as_str(), &pool.cell, self.day);
            let combinations = match pool.breed(settings.population, settings.mix, seed) {
                Ok(c) => c,
                Err(e) => {
                    unbred.push(format!("{}: {e}", pool.cell));
                    continue;
                }
            };
            if let Some(why) = pool.unbred(&combinations) {
                unbred.push(format!("{}: {why}", pool.cell));
            }
            parents.extend(
                pool.fittest(PARENTS_SHOWN)
                    .into_iter()
                    .map(|(id, fitness)| (id.to_owned(), fitness, pool.cell.to_string())),
            );
            cells.push(GeneticCell {
                cell: pool.cell.clone(),
                seed,
                space: pool.space.levels(),
                arms: pool.scored.len(),
                conversions: pool.evidence.successes,
                trials: pool.evidence.trials,
            });
            if !combinations.is_empty() {
                bred.push(Bred {
                    cell: pool.cell,
                    combinations,
                });
            }
        }
        let mut draft = Draft::new::<kinds::GeneticStep>(
            format!("genetic/day/{}", self.day),
            GeneticInputs {
                day: self.day,
                cells,
                seed: None,
                space: BTreeMap::new(),
            },
            GeneticChoice {
                bred: bred.clone(),
                next_generation: Vec::new(),
            },
        );
        for (variant, fitness, cell) in parents {
            draft = draft.alternative(
                variant,
                fitness,
                Some(format!(
                    "a fittest parent in {cell} (rate shrunk toward the cell's)"
                )),
            );
        }
        let new: usize = bred.iter().map(|b| b.combinations.len()).sum();
        let mix = settings.mix;
        let mut reason = if bred.is_empty() {
            "no new combination bred".to_owned()
        } else {
            format!(
                "bred {new} new combinations for content to write and compliance to review ({}); each cell's {} children come from its arms' results (elite {:.0} %, crossover {:.0} %, mutation {:.0} %, random {:.0} %), only those that are no arm yet",
                bred.iter()
                    .map(|b| format!("{}: {}", b.cell, b.combinations.len()))
                    .collect::<Vec<_>>()
                    .join(", "),
                settings.population,
                mix.elite * 100.0,
                mix.crossover * 100.0,
                mix.mutation * 100.0,
                mix.random * 100.0
            )
        };
        if !unbred.is_empty() {
            reason.push_str(&format!("; not bred: {}", unbred.join(", ")));
        }
        self.record(draft.reason(reason).confidence(0.4)).await
    }
}
