//! What MLflow's rows mean, below the plan and the scope: each kind's key, typed, so that one
//! kind's ids cannot reach another kind's query, and the values with which MLflow marks what it
//! deleted.

use std::fmt;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Integer, Text};

use crate::schema::experiments;

/// The `lifecycle_stage` of a soft-deleted experiment, run or logged model.
pub(crate) const DELETED: &str = "deleted";

/// What MLflow calls a deleted model version: its row is kept, redacted, with this stage.
pub(crate) const DELETED_MODEL_VERSION: &str = "Deleted_Internal";

/// MLflow's job statuses that are final: succeeded, failed, timed out, canceled.
pub(crate) const FINISHED_JOB_STATUSES: [i32; 4] = [2, 3, 4, 5];

/// Where MLflow records a trace's artifact location.
pub const TRACE_ARTIFACT_LOCATION_TAG: &str = "mlflow.artifactLocation";

/// Experiments still soft-deleted: every entity delete re-checks it inside its transaction.
#[diesel::dsl::auto_type]
pub(crate) fn deleted_experiments() -> _ {
    let deleted: &'static str = DELETED;
    experiments::table
        .select(experiments::experiment_id)
        .filter(experiments::lifecycle_stage.eq(deleted))
}

/// `entity_id!(Name(Inner): SqlType)`: a kind's key as its own type, read from and
/// bound to its column as `Inner` is, shown as `Inner` is.
macro_rules! entity_id {
    ($(#[$doc:meta])* $name:ident($inner:ty): $sql:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, AsExpression, FromSqlRow)]
        #[diesel(sql_type = $sql)]
        pub struct $name(pub $inner);

        impl<DB: Backend> ToSql<$sql, DB> for $name
        where
            $inner: ToSql<$sql, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<$sql, DB> for $name
        where
            $inner: FromSql<$sql, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                <$inner>::from_sql(bytes).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

entity_id!(
    /// `runs.run_uuid`.
    RunId(String): Text
);
entity_id!(
    /// `trace_info.request_id`.
    TraceId(String): Text
);
entity_id!(
    /// `logged_models.model_id`.
    LoggedModelId(String): Text
);
entity_id!(
    /// `experiments.experiment_id`.
    ExperimentId(i32): Integer
);
entity_id!(
    /// `webhooks.webhook_id`.
    WebhookId(String): Text
);
entity_id!(
    /// `jobs.id`.
    JobId(String): Text
);

/// A model version's key: MLflow keeps versions per registered model and workspace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelVersionKey {
    pub workspace: String,
    pub name: String,
    pub version: i32,
}

impl fmt::Display for ModelVersionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.workspace, self.name, self.version)
    }
}
