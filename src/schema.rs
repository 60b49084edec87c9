// @generated automatically by Diesel CLI.

diesel::table! {
    alembic_version (version_num) {
        #[max_length = 32]
        version_num -> Varchar,
    }
}

diesel::table! {
    assessments (assessment_id) {
        #[max_length = 50]
        assessment_id -> Varchar,
        #[max_length = 50]
        trace_id -> Varchar,
        #[max_length = 250]
        name -> Varchar,
        #[max_length = 20]
        assessment_type -> Varchar,
        value -> Text,
        error -> Nullable<Text>,
        created_timestamp -> Int8,
        last_updated_timestamp -> Int8,
        #[max_length = 50]
        source_type -> Varchar,
        #[max_length = 250]
        source_id -> Nullable<Varchar>,
        #[max_length = 32]
        run_id -> Nullable<Varchar>,
        #[max_length = 50]
        span_id -> Nullable<Varchar>,
        rationale -> Nullable<Text>,
        #[max_length = 50]
        overrides -> Nullable<Varchar>,
        valid -> Bool,
        assessment_metadata -> Nullable<Text>,
        experiment_id -> Nullable<Int4>,
        trace_timestamp_ms -> Nullable<Int8>,
        aggregate_value -> Nullable<Float8>,
        is_numeric_value -> Bool,
    }
}

diesel::table! {
    budget_policies (budget_policy_id) {
        #[max_length = 36]
        budget_policy_id -> Varchar,
        #[max_length = 32]
        budget_unit -> Varchar,
        budget_amount -> Float8,
        #[max_length = 32]
        duration_unit -> Varchar,
        duration_value -> Int4,
        #[max_length = 32]
        target_scope -> Varchar,
        #[max_length = 32]
        budget_action -> Varchar,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        created_at -> Int8,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        last_updated_at -> Int8,
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 255]
        target_value -> Nullable<Varchar>,
    }
}

diesel::table! {
    datasets (experiment_id, name, digest) {
        #[max_length = 36]
        dataset_uuid -> Varchar,
        experiment_id -> Int4,
        #[max_length = 500]
        name -> Varchar,
        #[max_length = 36]
        digest -> Varchar,
        #[max_length = 36]
        dataset_source_type -> Varchar,
        dataset_source -> Text,
        dataset_schema -> Nullable<Text>,
        dataset_profile -> Nullable<Text>,
    }
}

diesel::table! {
    endpoint_bindings (endpoint_id, resource_type, resource_id) {
        #[max_length = 36]
        endpoint_id -> Varchar,
        #[max_length = 50]
        resource_type -> Varchar,
        #[max_length = 255]
        resource_id -> Varchar,
        created_at -> Int8,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        last_updated_at -> Int8,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        #[max_length = 255]
        display_name -> Nullable<Varchar>,
    }
}

diesel::table! {
    endpoint_model_mappings (mapping_id) {
        #[max_length = 36]
        mapping_id -> Varchar,
        #[max_length = 36]
        endpoint_id -> Varchar,
        #[max_length = 36]
        model_definition_id -> Varchar,
        weight -> Float8,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        created_at -> Int8,
        #[max_length = 64]
        linkage_type -> Varchar,
        fallback_order -> Nullable<Int4>,
    }
}

diesel::table! {
    endpoint_tags (key, endpoint_id) {
        #[max_length = 250]
        key -> Varchar,
        #[max_length = 5000]
        value -> Nullable<Varchar>,
        #[max_length = 36]
        endpoint_id -> Varchar,
    }
}

diesel::table! {
    endpoints (endpoint_id) {
        #[max_length = 36]
        endpoint_id -> Varchar,
        #[max_length = 255]
        name -> Nullable<Varchar>,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        created_at -> Int8,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        last_updated_at -> Int8,
        #[max_length = 64]
        routing_strategy -> Nullable<Varchar>,
        fallback_config_json -> Nullable<Text>,
        experiment_id -> Nullable<Int4>,
        usage_tracking -> Bool,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    entity_associations (source_type, source_id, destination_type, destination_id) {
        #[max_length = 36]
        association_id -> Varchar,
        #[max_length = 36]
        source_type -> Varchar,
        #[max_length = 36]
        source_id -> Varchar,
        #[max_length = 36]
        destination_type -> Varchar,
        #[max_length = 36]
        destination_id -> Varchar,
        created_time -> Nullable<Int8>,
    }
}

diesel::table! {
    evaluation_dataset_records (dataset_record_id) {
        #[max_length = 36]
        dataset_record_id -> Varchar,
        #[max_length = 36]
        dataset_id -> Varchar,
        inputs -> Json,
        expectations -> Nullable<Json>,
        tags -> Nullable<Json>,
        source -> Nullable<Json>,
        #[max_length = 36]
        source_id -> Nullable<Varchar>,
        #[max_length = 255]
        source_type -> Nullable<Varchar>,
        created_time -> Nullable<Int8>,
        last_update_time -> Nullable<Int8>,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        #[max_length = 64]
        input_hash -> Varchar,
        outputs -> Nullable<Json>,
    }
}

diesel::table! {
    evaluation_dataset_tags (dataset_id, key) {
        #[max_length = 36]
        dataset_id -> Varchar,
        #[max_length = 255]
        key -> Varchar,
        #[max_length = 5000]
        value -> Nullable<Varchar>,
    }
}

diesel::table! {
    evaluation_datasets (dataset_id) {
        #[max_length = 36]
        dataset_id -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        schema -> Nullable<Text>,
        profile -> Nullable<Text>,
        #[max_length = 64]
        digest -> Nullable<Varchar>,
        created_time -> Nullable<Int8>,
        last_update_time -> Nullable<Int8>,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    experiment_tags (key, experiment_id) {
        #[max_length = 250]
        key -> Varchar,
        value -> Nullable<Text>,
        experiment_id -> Int4,
    }
}

diesel::table! {
    experiments (experiment_id) {
        experiment_id -> Int4,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 256]
        artifact_location -> Nullable<Varchar>,
        #[max_length = 32]
        lifecycle_stage -> Nullable<Varchar>,
        creation_time -> Nullable<Int8>,
        last_update_time -> Nullable<Int8>,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    guardrail_configs (endpoint_id, guardrail_id) {
        #[max_length = 36]
        endpoint_id -> Varchar,
        #[max_length = 36]
        guardrail_id -> Varchar,
        execution_order -> Nullable<Int4>,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        created_at -> Int8,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    guardrails (guardrail_id) {
        #[max_length = 36]
        guardrail_id -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 36]
        scorer_id -> Varchar,
        scorer_version -> Int4,
        #[max_length = 32]
        stage -> Varchar,
        #[max_length = 32]
        action -> Varchar,
        #[max_length = 36]
        action_endpoint_id -> Nullable<Varchar>,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        created_at -> Int8,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        last_updated_at -> Int8,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    input_tags (input_uuid, name) {
        #[max_length = 36]
        input_uuid -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 500]
        value -> Varchar,
    }
}

diesel::table! {
    inputs (source_type, source_id, destination_type, destination_id) {
        #[max_length = 36]
        input_uuid -> Varchar,
        #[max_length = 36]
        source_type -> Varchar,
        #[max_length = 36]
        source_id -> Varchar,
        #[max_length = 36]
        destination_type -> Varchar,
        #[max_length = 36]
        destination_id -> Varchar,
        step -> Int8,
    }
}

diesel::table! {
    issue_categories (issue_id, category_hash) {
        #[max_length = 36]
        issue_id -> Varchar,
        #[max_length = 64]
        category_hash -> Varchar,
        category -> Text,
    }
}

diesel::table! {
    issues (issue_id) {
        #[max_length = 36]
        issue_id -> Varchar,
        experiment_id -> Int4,
        #[max_length = 250]
        name -> Varchar,
        description -> Text,
        #[max_length = 50]
        status -> Varchar,
        #[max_length = 50]
        severity -> Nullable<Varchar>,
        root_causes -> Nullable<Text>,
        #[max_length = 32]
        source_run_id -> Nullable<Varchar>,
        categories -> Nullable<Text>,
        created_timestamp -> Int8,
        last_updated_timestamp -> Int8,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        last_seen_timestamp -> Nullable<Int8>,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        metadata -> Nullable<Text>,
    }
}

diesel::table! {
    job_locks (lock_key) {
        #[max_length = 255]
        lock_key -> Varchar,
        #[max_length = 36]
        job_id -> Varchar,
        acquired_at -> Int8,
    }
}

diesel::table! {
    jobs (id) {
        #[max_length = 36]
        id -> Varchar,
        creation_time -> Int8,
        #[max_length = 500]
        job_name -> Varchar,
        params -> Text,
        timeout -> Nullable<Float8>,
        status -> Int4,
        result -> Nullable<Text>,
        retry_count -> Int4,
        last_update_time -> Int8,
        #[max_length = 63]
        workspace -> Varchar,
        status_details -> Nullable<Json>,
        #[max_length = 255]
        creator -> Nullable<Varchar>,
        #[max_length = 255]
        executor_backend -> Nullable<Varchar>,
        lease_expires_at -> Nullable<Int8>,
        status_message -> Nullable<Text>,
        progress -> Nullable<Json>,
        progress_updated_at -> Nullable<Int8>,
        #[max_length = 64]
        token_hash -> Nullable<Varchar>,
        scoped_permissions -> Nullable<Json>,
        next_attempt_at -> Nullable<Int8>,
    }
}

diesel::table! {
    label_schemas (schema_id) {
        #[max_length = 36]
        schema_id -> Varchar,
        experiment_id -> Int4,
        #[max_length = 250]
        name -> Varchar,
        #[sql_name = "type"]
        #[max_length = 16]
        type_ -> Varchar,
        instruction -> Nullable<Text>,
        enable_comment -> Bool,
        #[max_length = 32]
        input_type -> Varchar,
        input_config -> Text,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        created_time -> Int8,
        last_update_time -> Int8,
        is_default -> Bool,
    }
}

diesel::table! {
    latest_metrics (key, run_uuid) {
        #[max_length = 250]
        key -> Varchar,
        value -> Float8,
        timestamp -> Nullable<Int8>,
        step -> Int8,
        is_nan -> Bool,
        #[max_length = 32]
        run_uuid -> Varchar,
    }
}

diesel::table! {
    logged_model_metrics (model_id, metric_name, metric_timestamp_ms, metric_step, run_id) {
        #[max_length = 36]
        model_id -> Varchar,
        #[max_length = 500]
        metric_name -> Varchar,
        metric_timestamp_ms -> Int8,
        metric_step -> Int8,
        metric_value -> Nullable<Float8>,
        experiment_id -> Int4,
        #[max_length = 32]
        run_id -> Varchar,
        #[max_length = 36]
        dataset_uuid -> Nullable<Varchar>,
        #[max_length = 500]
        dataset_name -> Nullable<Varchar>,
        #[max_length = 36]
        dataset_digest -> Nullable<Varchar>,
    }
}

diesel::table! {
    logged_model_params (model_id, param_key) {
        #[max_length = 36]
        model_id -> Varchar,
        experiment_id -> Int4,
        #[max_length = 255]
        param_key -> Varchar,
        param_value -> Text,
    }
}

diesel::table! {
    logged_model_tags (model_id, tag_key) {
        #[max_length = 36]
        model_id -> Varchar,
        experiment_id -> Int4,
        #[max_length = 255]
        tag_key -> Varchar,
        tag_value -> Text,
    }
}

diesel::table! {
    logged_models (model_id) {
        #[max_length = 36]
        model_id -> Varchar,
        experiment_id -> Int4,
        #[max_length = 500]
        name -> Varchar,
        #[max_length = 1000]
        artifact_location -> Varchar,
        creation_timestamp_ms -> Int8,
        last_updated_timestamp_ms -> Int8,
        status -> Int4,
        #[max_length = 32]
        lifecycle_stage -> Nullable<Varchar>,
        #[max_length = 500]
        model_type -> Nullable<Varchar>,
        #[max_length = 32]
        source_run_id -> Nullable<Varchar>,
        #[max_length = 1000]
        status_message -> Nullable<Varchar>,
    }
}

diesel::table! {
    mcp_access_endpoints (id) {
        #[max_length = 36]
        id -> Varchar,
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 256]
        server_name -> Varchar,
        #[max_length = 128]
        server_version -> Nullable<Varchar>,
        #[max_length = 256]
        server_alias -> Nullable<Varchar>,
        #[max_length = 2048]
        url -> Varchar,
        #[max_length = 32]
        transport_type -> Varchar,
        #[max_length = 256]
        created_by -> Nullable<Varchar>,
        #[max_length = 256]
        last_updated_by -> Nullable<Varchar>,
        created_at -> Int8,
        last_updated_at -> Int8,
    }
}

diesel::table! {
    mcp_server_aliases (workspace, name, alias) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 256]
        alias -> Varchar,
        #[max_length = 128]
        version -> Varchar,
    }
}

diesel::table! {
    mcp_server_tags (workspace, name, key) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 250]
        key -> Varchar,
        #[max_length = 5000]
        value -> Nullable<Varchar>,
    }
}

diesel::table! {
    mcp_server_version_tags (workspace, name, version, key) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 128]
        version -> Varchar,
        #[max_length = 250]
        key -> Varchar,
        #[max_length = 5000]
        value -> Nullable<Varchar>,
    }
}

diesel::table! {
    mcp_server_versions (workspace, name, version) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 128]
        version -> Varchar,
        version_major -> Int4,
        version_minor -> Int4,
        version_patch -> Int4,
        #[max_length = 512]
        version_prerelease_sort_key -> Varchar,
        server_json -> Json,
        #[max_length = 20]
        status -> Varchar,
        tools -> Nullable<Json>,
        #[max_length = 512]
        source -> Nullable<Varchar>,
        connect_options -> Nullable<Json>,
        #[max_length = 256]
        created_by -> Nullable<Varchar>,
        #[max_length = 256]
        last_updated_by -> Nullable<Varchar>,
        created_at -> Int8,
        last_updated_at -> Int8,
    }
}

diesel::table! {
    mcp_servers (workspace, name) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 256]
        display_name -> Nullable<Varchar>,
        description -> Nullable<Text>,
        icons -> Nullable<Json>,
        #[max_length = 256]
        created_by -> Nullable<Varchar>,
        #[max_length = 256]
        last_updated_by -> Nullable<Varchar>,
        created_at -> Int8,
        last_updated_at -> Int8,
    }
}

diesel::table! {
    metrics (key, timestamp, step, run_uuid, value, is_nan) {
        #[max_length = 250]
        key -> Varchar,
        value -> Float8,
        timestamp -> Int8,
        #[max_length = 32]
        run_uuid -> Varchar,
        step -> Int8,
        is_nan -> Bool,
    }
}

diesel::table! {
    model_definitions (model_definition_id) {
        #[max_length = 36]
        model_definition_id -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 36]
        secret_id -> Nullable<Varchar>,
        #[max_length = 64]
        provider -> Varchar,
        #[max_length = 256]
        model_name -> Varchar,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        created_at -> Int8,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        last_updated_at -> Int8,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    model_version_tags (workspace, key, name, version) {
        #[max_length = 250]
        key -> Varchar,
        value -> Nullable<Text>,
        #[max_length = 256]
        name -> Varchar,
        version -> Int4,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    model_versions (workspace, name, version) {
        #[max_length = 256]
        name -> Varchar,
        version -> Int4,
        creation_time -> Nullable<Int8>,
        last_updated_time -> Nullable<Int8>,
        #[max_length = 5000]
        description -> Nullable<Varchar>,
        #[max_length = 256]
        user_id -> Nullable<Varchar>,
        #[max_length = 20]
        current_stage -> Nullable<Varchar>,
        #[max_length = 500]
        source -> Nullable<Varchar>,
        #[max_length = 32]
        run_id -> Nullable<Varchar>,
        #[max_length = 20]
        status -> Nullable<Varchar>,
        #[max_length = 500]
        status_message -> Nullable<Varchar>,
        #[max_length = 500]
        run_link -> Nullable<Varchar>,
        #[max_length = 500]
        storage_location -> Nullable<Varchar>,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    online_scoring_configs (online_scoring_config_id) {
        #[max_length = 36]
        online_scoring_config_id -> Varchar,
        #[max_length = 36]
        scorer_id -> Varchar,
        sample_rate -> Float8,
        experiment_id -> Int4,
        filter_string -> Nullable<Text>,
    }
}

diesel::table! {
    params (key, run_uuid) {
        #[max_length = 250]
        key -> Varchar,
        #[max_length = 8000]
        value -> Varchar,
        #[max_length = 32]
        run_uuid -> Varchar,
    }
}

diesel::table! {
    registered_model_aliases (workspace, name, alias) {
        #[max_length = 256]
        alias -> Varchar,
        version -> Int4,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    registered_model_tags (workspace, key, name) {
        #[max_length = 250]
        key -> Varchar,
        #[max_length = 5000]
        value -> Nullable<Varchar>,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    registered_models (workspace, name) {
        #[max_length = 256]
        name -> Varchar,
        creation_time -> Nullable<Int8>,
        last_updated_time -> Nullable<Int8>,
        #[max_length = 5000]
        description -> Nullable<Varchar>,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    review_queue_items (queue_id, item_id) {
        #[max_length = 36]
        queue_id -> Varchar,
        #[max_length = 16]
        item_type -> Varchar,
        #[max_length = 50]
        item_id -> Varchar,
        #[max_length = 16]
        status -> Varchar,
        #[max_length = 250]
        completed_by -> Nullable<Varchar>,
        completed_time_ms -> Nullable<Int8>,
        creation_time_ms -> Int8,
        last_update_time_ms -> Int8,
    }
}

diesel::table! {
    review_queue_label_schemas (queue_id, schema_id) {
        #[max_length = 36]
        queue_id -> Varchar,
        #[max_length = 36]
        schema_id -> Varchar,
    }
}

diesel::table! {
    review_queue_users (queue_id, user_id) {
        #[max_length = 36]
        queue_id -> Varchar,
        #[max_length = 250]
        user_id -> Varchar,
    }
}

diesel::table! {
    review_queues (queue_id) {
        #[max_length = 36]
        queue_id -> Varchar,
        experiment_id -> Int4,
        #[max_length = 250]
        name -> Varchar,
        #[max_length = 16]
        queue_type -> Varchar,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        creation_time_ms -> Int8,
        last_update_time_ms -> Int8,
        #[max_length = 250]
        name_key -> Varchar,
    }
}

diesel::table! {
    runs (run_uuid) {
        #[max_length = 32]
        run_uuid -> Varchar,
        #[max_length = 250]
        name -> Nullable<Varchar>,
        #[max_length = 20]
        source_type -> Nullable<Varchar>,
        #[max_length = 500]
        source_name -> Nullable<Varchar>,
        #[max_length = 50]
        entry_point_name -> Nullable<Varchar>,
        #[max_length = 256]
        user_id -> Nullable<Varchar>,
        #[max_length = 9]
        status -> Nullable<Varchar>,
        start_time -> Nullable<Int8>,
        end_time -> Nullable<Int8>,
        #[max_length = 50]
        source_version -> Nullable<Varchar>,
        #[max_length = 20]
        lifecycle_stage -> Nullable<Varchar>,
        #[max_length = 200]
        artifact_uri -> Nullable<Varchar>,
        experiment_id -> Nullable<Int4>,
        deleted_time -> Nullable<Int8>,
    }
}

diesel::table! {
    scheduler_leases (lease_key) {
        #[max_length = 255]
        lease_key -> Varchar,
        acquired_at -> Int8,
        ttl_seconds -> Int4,
    }
}

diesel::table! {
    scorer_versions (scorer_id, scorer_version) {
        #[max_length = 36]
        scorer_id -> Varchar,
        scorer_version -> Int4,
        serialized_scorer -> Text,
        creation_time -> Nullable<Int8>,
    }
}

diesel::table! {
    scorers (scorer_id) {
        experiment_id -> Int4,
        #[max_length = 256]
        scorer_name -> Varchar,
        #[max_length = 36]
        scorer_id -> Varchar,
    }
}

diesel::table! {
    secrets (secret_id) {
        #[max_length = 36]
        secret_id -> Varchar,
        #[max_length = 255]
        secret_name -> Varchar,
        encrypted_value -> Bytea,
        wrapped_dek -> Bytea,
        kek_version -> Int4,
        #[max_length = 500]
        masked_value -> Varchar,
        #[max_length = 64]
        provider -> Nullable<Varchar>,
        auth_config -> Nullable<Text>,
        description -> Nullable<Text>,
        #[max_length = 255]
        created_by -> Nullable<Varchar>,
        created_at -> Int8,
        #[max_length = 255]
        last_updated_by -> Nullable<Varchar>,
        last_updated_at -> Int8,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    skill_aliases (workspace, organization, name, alias) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 64]
        organization -> Varchar,
        #[max_length = 128]
        name -> Varchar,
        #[max_length = 256]
        alias -> Varchar,
        version -> Int4,
    }
}

diesel::table! {
    skill_tags (workspace, organization, name, key) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 64]
        organization -> Varchar,
        #[max_length = 128]
        name -> Varchar,
        #[max_length = 250]
        key -> Varchar,
        value -> Nullable<Text>,
    }
}

diesel::table! {
    skill_version_tags (workspace, organization, name, version, key) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 64]
        organization -> Varchar,
        #[max_length = 128]
        name -> Varchar,
        version -> Int4,
        #[max_length = 250]
        key -> Varchar,
        value -> Nullable<Text>,
    }
}

diesel::table! {
    skill_versions (workspace, organization, name, version) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 64]
        organization -> Varchar,
        #[max_length = 128]
        name -> Varchar,
        version -> Int4,
        #[max_length = 20]
        source_type -> Nullable<Varchar>,
        #[max_length = 2048]
        source -> Nullable<Varchar>,
        #[sql_name = "ref"]
        #[max_length = 2048]
        ref_ -> Nullable<Varchar>,
        #[max_length = 2048]
        subpath -> Nullable<Varchar>,
        #[max_length = 64]
        digest -> Nullable<Varchar>,
        #[max_length = 20]
        status -> Varchar,
        #[max_length = 256]
        created_by -> Nullable<Varchar>,
        #[max_length = 256]
        last_updated_by -> Nullable<Varchar>,
        created_at -> Int8,
        last_updated_at -> Int8,
    }
}

diesel::table! {
    skills (workspace, organization, name) {
        #[max_length = 63]
        workspace -> Varchar,
        #[max_length = 64]
        organization -> Varchar,
        #[max_length = 128]
        name -> Varchar,
        description -> Nullable<Text>,
        icons -> Nullable<Json>,
        search_text -> Nullable<Text>,
        #[max_length = 256]
        created_by -> Nullable<Varchar>,
        #[max_length = 256]
        last_updated_by -> Nullable<Varchar>,
        created_at -> Int8,
        last_updated_at -> Int8,
    }
}

diesel::table! {
    span_metrics (trace_id, span_id, key) {
        #[max_length = 50]
        trace_id -> Varchar,
        #[max_length = 50]
        span_id -> Varchar,
        #[max_length = 250]
        key -> Varchar,
        value -> Nullable<Float8>,
    }
}

diesel::table! {
    spans (trace_id, span_id) {
        #[max_length = 50]
        trace_id -> Varchar,
        experiment_id -> Int4,
        #[max_length = 50]
        span_id -> Varchar,
        #[max_length = 50]
        parent_span_id -> Nullable<Varchar>,
        name -> Nullable<Text>,
        #[sql_name = "type"]
        #[max_length = 500]
        type_ -> Nullable<Varchar>,
        #[max_length = 50]
        status -> Varchar,
        start_time_unix_nano -> Int8,
        end_time_unix_nano -> Nullable<Int8>,
        duration_ns -> Nullable<Int8>,
        content -> Text,
        input_cost -> Nullable<Float8>,
        output_cost -> Nullable<Float8>,
        total_cost -> Nullable<Float8>,
        #[max_length = 500]
        model_name -> Nullable<Varchar>,
        #[max_length = 500]
        model_provider -> Nullable<Varchar>,
    }
}

diesel::table! {
    sql_assessment_daily_rollups (id) {
        id -> Int8,
        experiment_id -> Int4,
        rollup_day -> Date,
        #[max_length = 250]
        metric_name -> Varchar,
        #[max_length = 50]
        grouping_set -> Varchar,
        sample_count -> Int8,
        sum_value -> Nullable<Float8>,
        min_value -> Nullable<Float8>,
        max_value -> Nullable<Float8>,
    }
}

diesel::table! {
    sql_span_cost_daily_rollups (id) {
        id -> Int8,
        experiment_id -> Int4,
        rollup_day -> Date,
        #[max_length = 250]
        metric_name -> Varchar,
        #[max_length = 50]
        grouping_set -> Varchar,
        #[max_length = 500]
        model_name -> Nullable<Varchar>,
        #[max_length = 500]
        model_provider -> Nullable<Varchar>,
        sample_count -> Int8,
        sum_value -> Nullable<Float8>,
        min_value -> Nullable<Float8>,
        max_value -> Nullable<Float8>,
    }
}

diesel::table! {
    sql_trace_metric_daily_rollups (id) {
        id -> Int8,
        experiment_id -> Int4,
        rollup_day -> Date,
        #[max_length = 250]
        metric_name -> Varchar,
        #[max_length = 50]
        grouping_set -> Varchar,
        #[max_length = 50]
        trace_status -> Nullable<Varchar>,
        sample_count -> Int8,
        sum_value -> Nullable<Float8>,
        min_value -> Nullable<Float8>,
        max_value -> Nullable<Float8>,
        p50_value -> Nullable<Float8>,
        p90_value -> Nullable<Float8>,
        p99_value -> Nullable<Float8>,
    }
}

diesel::table! {
    sql_trace_rollup_rebuild_queue (experiment_id, rollup_day, rollup_family) {
        experiment_id -> Int4,
        rollup_day -> Date,
        #[max_length = 50]
        rollup_family -> Varchar,
    }
}

diesel::table! {
    tags (key, run_uuid) {
        #[max_length = 250]
        key -> Varchar,
        #[max_length = 8000]
        value -> Nullable<Varchar>,
        #[max_length = 32]
        run_uuid -> Varchar,
    }
}

diesel::table! {
    trace_info (request_id) {
        #[max_length = 50]
        request_id -> Varchar,
        experiment_id -> Int4,
        timestamp_ms -> Int8,
        execution_time_ms -> Nullable<Int8>,
        #[max_length = 50]
        status -> Varchar,
        #[max_length = 50]
        client_request_id -> Nullable<Varchar>,
        #[max_length = 1000]
        request_preview -> Nullable<Varchar>,
        #[max_length = 1000]
        response_preview -> Nullable<Varchar>,
        db_payload_generation -> Int4,
        #[max_length = 4096]
        trace_name -> Nullable<Varchar>,
        #[max_length = 250]
        session_id -> Nullable<Varchar>,
        input_tokens -> Nullable<Int8>,
        output_tokens -> Nullable<Int8>,
        total_tokens -> Nullable<Int8>,
        cache_read_input_tokens -> Nullable<Int8>,
        cache_creation_input_tokens -> Nullable<Int8>,
        cache_creation_input_tokens_above_1hr -> Nullable<Int8>,
        input_cost -> Nullable<Float8>,
        output_cost -> Nullable<Float8>,
        total_cost -> Nullable<Float8>,
    }
}

diesel::table! {
    trace_metrics (request_id, key) {
        #[max_length = 50]
        request_id -> Varchar,
        #[max_length = 250]
        key -> Varchar,
        value -> Nullable<Float8>,
    }
}

diesel::table! {
    trace_request_metadata (key, request_id) {
        #[max_length = 250]
        key -> Varchar,
        #[max_length = 8000]
        value -> Nullable<Varchar>,
        #[max_length = 50]
        request_id -> Varchar,
    }
}

diesel::table! {
    trace_tags (key, request_id) {
        #[max_length = 250]
        key -> Varchar,
        #[max_length = 8000]
        value -> Nullable<Varchar>,
        #[max_length = 50]
        request_id -> Varchar,
    }
}

diesel::table! {
    webhook_events (webhook_id, entity, action) {
        #[max_length = 256]
        webhook_id -> Varchar,
        #[max_length = 50]
        entity -> Varchar,
        #[max_length = 50]
        action -> Varchar,
    }
}

diesel::table! {
    webhooks (webhook_id) {
        #[max_length = 256]
        webhook_id -> Varchar,
        #[max_length = 256]
        name -> Varchar,
        #[max_length = 1000]
        description -> Nullable<Varchar>,
        #[max_length = 500]
        url -> Varchar,
        #[max_length = 20]
        status -> Varchar,
        #[max_length = 1000]
        secret -> Nullable<Varchar>,
        creation_timestamp -> Nullable<Int8>,
        last_updated_timestamp -> Nullable<Int8>,
        deleted_timestamp -> Nullable<Int8>,
        #[max_length = 63]
        workspace -> Varchar,
    }
}

diesel::table! {
    workspaces (name) {
        #[max_length = 63]
        name -> Varchar,
        description -> Nullable<Text>,
        default_artifact_root -> Nullable<Text>,
        trace_archival_location -> Nullable<Text>,
        #[max_length = 32]
        trace_archival_retention -> Nullable<Varchar>,
    }
}

diesel::joinable!(assessments -> trace_info (trace_id));
diesel::joinable!(datasets -> experiments (experiment_id));
diesel::joinable!(endpoint_bindings -> endpoints (endpoint_id));
diesel::joinable!(endpoint_model_mappings -> endpoints (endpoint_id));
diesel::joinable!(endpoint_model_mappings -> model_definitions (model_definition_id));
diesel::joinable!(endpoint_tags -> endpoints (endpoint_id));
diesel::joinable!(endpoints -> experiments (experiment_id));
diesel::joinable!(evaluation_dataset_records -> evaluation_datasets (dataset_id));
diesel::joinable!(evaluation_dataset_tags -> evaluation_datasets (dataset_id));
diesel::joinable!(experiment_tags -> experiments (experiment_id));
diesel::joinable!(guardrail_configs -> endpoints (endpoint_id));
diesel::joinable!(guardrail_configs -> guardrails (guardrail_id));
diesel::joinable!(guardrails -> endpoints (action_endpoint_id));
diesel::joinable!(issue_categories -> issues (issue_id));
diesel::joinable!(issues -> experiments (experiment_id));
diesel::joinable!(issues -> runs (source_run_id));
diesel::joinable!(job_locks -> jobs (job_id));
diesel::joinable!(label_schemas -> experiments (experiment_id));
diesel::joinable!(latest_metrics -> runs (run_uuid));
diesel::joinable!(logged_model_metrics -> experiments (experiment_id));
diesel::joinable!(logged_model_metrics -> logged_models (model_id));
diesel::joinable!(logged_model_metrics -> runs (run_id));
diesel::joinable!(logged_model_params -> experiments (experiment_id));
diesel::joinable!(logged_model_params -> logged_models (model_id));
diesel::joinable!(logged_model_tags -> experiments (experiment_id));
diesel::joinable!(logged_model_tags -> logged_models (model_id));
diesel::joinable!(logged_models -> experiments (experiment_id));
diesel::joinable!(metrics -> runs (run_uuid));
diesel::joinable!(model_definitions -> secrets (secret_id));
diesel::joinable!(online_scoring_configs -> experiments (experiment_id));
diesel::joinable!(online_scoring_configs -> scorers (scorer_id));
diesel::joinable!(params -> runs (run_uuid));
diesel::joinable!(review_queue_items -> review_queues (queue_id));
diesel::joinable!(review_queue_label_schemas -> review_queues (queue_id));
diesel::joinable!(review_queue_users -> review_queues (queue_id));
diesel::joinable!(review_queues -> experiments (experiment_id));
diesel::joinable!(runs -> experiments (experiment_id));
diesel::joinable!(scorer_versions -> scorers (scorer_id));
diesel::joinable!(scorers -> experiments (experiment_id));
diesel::joinable!(spans -> experiments (experiment_id));
diesel::joinable!(spans -> trace_info (trace_id));
diesel::joinable!(tags -> runs (run_uuid));
diesel::joinable!(trace_info -> experiments (experiment_id));
diesel::joinable!(trace_metrics -> trace_info (request_id));
diesel::joinable!(trace_request_metadata -> trace_info (request_id));
diesel::joinable!(trace_tags -> trace_info (request_id));
diesel::joinable!(webhook_events -> webhooks (webhook_id));

diesel::allow_tables_to_appear_in_same_query!(
    alembic_version,
    assessments,
    budget_policies,
    datasets,
    endpoint_bindings,
    endpoint_model_mappings,
    endpoint_tags,
    endpoints,
    entity_associations,
    evaluation_dataset_records,
    evaluation_dataset_tags,
    evaluation_datasets,
    experiment_tags,
    experiments,
    guardrail_configs,
    guardrails,
    input_tags,
    inputs,
    issue_categories,
    issues,
    job_locks,
    jobs,
    label_schemas,
    latest_metrics,
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    mcp_access_endpoints,
    mcp_server_aliases,
    mcp_server_tags,
    mcp_server_version_tags,
    mcp_server_versions,
    mcp_servers,
    metrics,
    model_definitions,
    model_version_tags,
    model_versions,
    online_scoring_configs,
    params,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
    review_queue_items,
    review_queue_label_schemas,
    review_queue_users,
    review_queues,
    runs,
    scheduler_leases,
    scorer_versions,
    scorers,
    secrets,
    skill_aliases,
    skill_tags,
    skill_version_tags,
    skill_versions,
    skills,
    span_metrics,
    spans,
    sql_assessment_daily_rollups,
    sql_span_cost_daily_rollups,
    sql_trace_metric_daily_rollups,
    sql_trace_rollup_rebuild_queue,
    tags,
    trace_info,
    trace_metrics,
    trace_request_metadata,
    trace_tags,
    webhook_events,
    webhooks,
    workspaces,
);
