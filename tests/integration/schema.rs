//! The delete plan against the foreign keys of a store made from the committed snapshot of the
//! real `mlflow db upgrade`.

use mlflow_janitor::coverage::{plan_problems, reaching_keys};
use mlflow_janitor::introspect::foreign_keys;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::Backend;
use test_case::test_case;

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn the_plan_deletes_every_referencing_table_before_its_parent(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    let keys = foreign_keys(&mut store.connect().unwrap()).unwrap();
    assert_eq!(keys.len(), 57, "MLflow 3.17.2 has 57 foreign keys");
    // Sanity: the check does see the keys it must follow.
    let reaching = reaching_keys(&keys);
    assert!(reaching.iter().any(|fk| fk.table == "span_metrics" && fk.parent == "spans"));
    assert!(!reaching.iter().any(|fk| fk.table == "endpoints"), "SET NULL is not followed");
    let problems = plan_problems(&keys);
    assert!(problems.is_empty(), "the delete plan is incomplete:\n{}", problems.join("\n"));
}
