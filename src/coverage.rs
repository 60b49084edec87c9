//! Checks the delete plan against a store's foreign keys: every table that references an entity
//! the plan deletes (directly or through another table) must be deleted by the plan, before its
//! parent, or be a known blocker. The test suite runs [`plan_problems`] on a fresh MLflow store;
//! every purge runs [`check_store`] on the user's store before deleting anything.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::plan::steps_in_order;
use crate::scope::BLOCKERS;
use crate::store::catalog::ForeignKey;

/// The foreign keys through which deleting entity rows reaches another table: those whose parent
/// is an entity table or reached itself. Keys the database clears (SET NULL) leave the
/// referencing row in place, and blockers are never deleted, so neither is followed further.
pub fn reaching_keys(keys: &[ForeignKey]) -> Vec<&ForeignKey> {
    let entities = steps_in_order().into_iter().filter(|step| step.entity_rows);
    let mut reached: BTreeSet<&str> = entities.map(|step| step.table).collect();
    let mut edges = Vec::new();
    loop {
        let before = edges.len();
        for fk in keys {
            let followed = reached.contains(fk.parent.as_str())
                && !matches!(
                    fk.on_delete,
                    crate::store::catalog::OnDelete::SetNull
                        | crate::store::catalog::OnDelete::SetDefault
                )
                && !edges.contains(&fk);
            if followed {
                edges.push(fk);
                if !BLOCKERS.iter().any(|b| b.table == fk.table) {
                    reached.insert(fk.table.as_str());
                }
            }
        }
        if edges.len() == before {
            return edges;
        }
    }
}

/// What is wrong with the plan for a store with these foreign keys: referencing tables the plan
/// misses, and tables deleted after their parent. Empty when the plan is complete.
pub fn plan_problems(keys: &[ForeignKey]) -> Vec<String> {
    let order = steps_in_order();
    let positions = |table: &str| -> Vec<usize> {
        order.iter().enumerate().filter(|(_, step)| step.table == table).map(|(i, _)| i).collect()
    };
    let mut problems = Vec::new();
    for fk in reaching_keys(keys) {
        if BLOCKERS.iter().any(|b| b.table == fk.table) {
            continue;
        }
        let children = positions(&fk.table);
        if children.is_empty() {
            problems.push(format!(
                "`{}` references `{}` ({}) and is not in the delete plan",
                fk.table, fk.parent, fk.name
            ));
            continue;
        }
        for parent in positions(&fk.parent) {
            if !children.iter().any(|&child| child < parent) {
                problems.push(format!(
                    "`{}` ({}) must be deleted before `{}` (step {parent} of the plan)",
                    fk.table, fk.name, fk.parent
                ));
            }
        }
    }
    problems
}

/// The foreign keys through which deleting the plan's rows would hit a table the plan does not
/// know and the database would not clear by itself (a newer MLflow).
pub fn unknown_references(keys: &[ForeignKey]) -> Vec<&ForeignKey> {
    let known: BTreeSet<&str> = steps_in_order().into_iter().map(|step| step.table).collect();
    reaching_keys(keys)
        .into_iter()
        .filter(|fk| {
            let known_table =
                known.contains(fk.table.as_str()) || BLOCKERS.iter().any(|b| b.table == fk.table);
            !known_table && !fk.on_delete.handled_by_database()
        })
        .collect()
}

/// The error for such a foreign key.
pub fn unknown_reference_error(fk: &ForeignKey) -> Error {
    Error::UnknownReference {
        table: fk.table.clone(),
        parent: fk.parent.clone(),
        constraint: fk.name.clone(),
        on_delete: fk.on_delete.as_sql().to_owned(),
    }
}

/// Refuses a store with an unknown reference, before anything is deleted.
pub fn check_store(keys: &[ForeignKey]) -> Result<()> {
    match unknown_references(keys).first() {
        Some(fk) => Err(unknown_reference_error(fk)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::catalog::OnDelete;

    fn fk(table: &str, parent: &str, on_delete: OnDelete) -> ForeignKey {
        ForeignKey {
            name: format!("{table}_fk"),
            table: table.into(),
            parent: parent.into(),
            on_delete,
        }
    }

    #[test]
    fn finds_a_missing_table_through_another() {
        let keys = [
            fk("metrics", "runs", OnDelete::NoAction),
            fk("new_parent", "runs", OnDelete::Cascade),
            fk("new_child", "new_parent", OnDelete::NoAction),
            fk("endpoints", "experiments", OnDelete::SetNull),
            fk("below_endpoints", "endpoints", OnDelete::NoAction),
        ];
        let problems = plan_problems(&keys);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("`new_parent` references `runs`"));
        assert!(problems[1].contains("`new_child` references `new_parent`"));
        let err = check_store(&keys).unwrap_err();
        assert!(err.to_string().contains("table `new_child` references `new_parent`"), "{err}");
    }

    #[test]
    fn accepts_an_unknown_cascading_table_at_run_time() {
        let keys = [fk("new_table", "runs", OnDelete::Cascade)];
        assert!(check_store(&keys).is_ok());
    }

    #[test]
    fn finds_a_child_deleted_after_its_parent() {
        // `experiment_tags` comes after `runs` in the plan: pretend it references runs.
        let keys = [fk("experiment_tags", "runs", OnDelete::NoAction)];
        let problems = plan_problems(&keys);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("must be deleted before `runs`"), "{problems:?}");
    }
}
