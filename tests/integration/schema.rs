//! The delete plan against the foreign keys of a store made from the committed snapshot of the
//! real `mlflow db upgrade`.

use mlflow_janitor::coverage::{plan_problems, reaching_keys};
use mlflow_janitor::store::catalog::foreign_keys;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::Backend;
use test_case::test_case;

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn the_plan_deletes_every_referencing_table_before_its_parent(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    let keys = foreign_keys(&mut store.connect().unwrap()).unwrap();
    assert_eq!(keys.len(), 62, "MLflow 3.18.0 has 62 foreign keys");
    // Sanity: the check does see the keys it must follow.
    let reaching = reaching_keys(&keys);
    assert!(reaching.iter().any(|fk| fk.table == "span_metrics" && fk.parent == "spans"));
    assert!(reaching.iter().any(|fk| fk.table == "issue_categories" && fk.parent == "issues"));
    assert!(!reaching.iter().any(|fk| fk.table == "endpoints"), "SET NULL is not followed");
    // The skill registry (3.18.0) hangs off `skills` alone, which references nothing a purge
    // deletes: a purge never reaches it.
    let skill_keys: Vec<_> = keys.iter().filter(|fk| fk.table.starts_with("skill")).collect();
    assert_eq!(skill_keys.len(), 4, "{skill_keys:?}");
    assert!(!reaching.iter().any(|fk| fk.table.starts_with("skill")), "{reaching:?}");
    let problems = plan_problems(&keys);
    assert!(problems.is_empty(), "the delete plan is incomplete:\n{}", problems.join("\n"));
}
