import GRDB

/// The registry's schema, as forward-only migrations. Table and view names
/// are part of the user interface (`sqlite3 runs.db`): keep them stable.
enum Schema {
    /// Index i holds the SQL that takes the schema from version i to i + 1.
    static let migrations: [String] = [v1, v2, v3, v4, v5]
    static var version: Int { migrations.count }

    static let v1 = """
    CREATE TABLE experiments (
        id          TEXT PRIMARY KEY,            -- sha256 of the resolved spec, first 16 hex digits
        name        TEXT NOT NULL,
        parent      TEXT,                        -- name of the experiment it extends
        spec_json   TEXT NOT NULL,               -- the fully resolved spec
        spec_hash   TEXT NOT NULL,
        description TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE runs (
        id                  TEXT PRIMARY KEY,    -- time-sortable, globally unique (ULID)
        experiment_id       TEXT NOT NULL REFERENCES experiments(id),
        status              TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
        seed                INTEGER NOT NULL,
        started_at          TEXT NOT NULL,
        finished_at         TEXT,
        heartbeat_at        TEXT NOT NULL,
        git_commit          TEXT,
        git_dirty           INTEGER,
        host                TEXT,
        pid                 INTEGER,
        threads             INTEGER,
        blas                TEXT,
        swift_version       TEXT,
        build               TEXT,
        dataset_source      TEXT,
        dataset_root        TEXT,
        dataset_fingerprint TEXT,
        label_mode          TEXT,
        split_seed          INTEGER,
        n_train             INTEGER,
        n_val               INTEGER,
        n_test              INTEGER,
        params              INTEGER,
        epochs_run          INTEGER NOT NULL DEFAULT 0,
        best_epoch          INTEGER,
        best_val_loss       REAL,
        best_val_accuracy   REAL,
        best_val_macro_f1   REAL,
        test_accuracy       REAL,
        test_macro_f1       REAL,
        train_seconds       REAL,
        error               TEXT
    );
    CREATE INDEX runs_experiment ON runs(experiment_id);
    CREATE TABLE epochs (
        run_id            TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch             INTEGER NOT NULL,
        train_loss        REAL,
        train_accuracy    REAL,
        val_loss          REAL,
        val_accuracy      REAL,
        val_macro_f1      REAL,
        lr                REAL,
        seconds           REAL,
        images_per_second REAL,
        PRIMARY KEY (run_id, epoch)
    );
    CREATE TABLE confusion (
        run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        split           TEXT NOT NULL CHECK (split IN ('val', 'test')),
        true_class      TEXT NOT NULL,
        predicted_class TEXT NOT NULL,
        count           INTEGER NOT NULL,
        PRIMARY KEY (run_id, split, true_class, predicted_class)
    );
    CREATE TABLE predictions (
        run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        split           TEXT NOT NULL CHECK (split IN ('val', 'test')),
        image           TEXT NOT NULL,
        true_class      TEXT NOT NULL,
        predicted_class TEXT NOT NULL,
        confidence      REAL NOT NULL,
        probabilities   TEXT NOT NULL,           -- JSON array in class order
        PRIMARY KEY (run_id, split, image)
    );
    CREATE TABLE test_evaluations (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id            TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        evaluated_at      TEXT NOT NULL,
        accuracy          REAL NOT NULL,
        macro_f1          REAL NOT NULL,
        nll               REAL NOT NULL,
        ece               REAL NOT NULL,
        checkpoint_sha256 TEXT NOT NULL,
        trigger           TEXT NOT NULL          -- 'spec' or 'lab test'
    );
    CREATE TABLE checkpoints (
        run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        kind       TEXT NOT NULL CHECK (kind IN ('best', 'last')),
        epoch      INTEGER NOT NULL,
        is_best    INTEGER NOT NULL,
        sha256     TEXT NOT NULL,
        bytes      INTEGER NOT NULL,
        data       BLOB NOT NULL,                -- safetensors, PyTorch state_dict names
        optimizer  BLOB,                         -- safetensors: Adam moments (last only)
        state_json TEXT,                         -- trainer state for resume (last only)
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, kind)
    );
    CREATE TABLE class_metrics (
        run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        split      TEXT NOT NULL CHECK (split IN ('val', 'test')),
        class      TEXT NOT NULL,
        precision  REAL,
        recall     REAL,
        f1         REAL,
        support    INTEGER NOT NULL,
        PRIMARY KEY (run_id, split, class)
    );
    -- A running run whose heartbeat is older than two minutes has died.
    CREATE VIEW run_summary AS
    SELECT r.id AS run_id, e.name AS experiment,
           CASE WHEN r.status = 'running' AND r.heartbeat_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-120 seconds')
                THEN 'interrupted' ELSE r.status END AS status,
           r.seed, r.epochs_run, r.best_epoch,
           ROUND(r.best_val_accuracy, 4) AS val_accuracy, ROUND(r.best_val_macro_f1, 4) AS val_macro_f1,
           ROUND(r.test_accuracy, 4) AS test_accuracy, ROUND(r.test_macro_f1, 4) AS test_macro_f1,
           (SELECT COUNT(*) FROM test_evaluations t WHERE t.run_id = r.id) AS test_looks,
           r.dataset_source, r.label_mode, r.n_train, r.n_val, r.n_test, r.params, r.threads,
           ROUND(r.train_seconds, 1) AS train_seconds, r.started_at, r.finished_at, r.git_commit, r.host
    FROM runs r JOIN experiments e ON e.id = r.experiment_id;
    CREATE VIEW leaderboard AS
    SELECT e.name AS experiment, COUNT(*) AS runs,
           ROUND(AVG(r.best_val_accuracy), 4) AS mean_val_accuracy,
           ROUND(AVG(r.best_val_macro_f1), 4) AS mean_val_macro_f1,
           ROUND(AVG(r.test_accuracy), 4) AS mean_test_accuracy,
           MAX(r.params) AS params
    FROM runs r JOIN experiments e ON e.id = r.experiment_id
    WHERE r.status = 'completed'
    GROUP BY e.name
    ORDER BY mean_val_macro_f1 DESC;
    """

    /// Explanations: per-image scores, per-call summaries (with the chance
    /// baselines as methods 'center_prior' and 'random'), and the cascading
    /// randomization sanity check.
    static let v2 = """
    CREATE TABLE explanations (
        run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        method          TEXT NOT NULL,           -- gradcam | gradcam++ | center_prior | random
        layer           TEXT NOT NULL,
        split           TEXT NOT NULL,
        image           TEXT NOT NULL,
        target_class    TEXT NOT NULL,
        predicted_class TEXT NOT NULL,
        true_class      TEXT NOT NULL,
        energy_in_mask  REAL NOT NULL,           -- share of map mass inside the expressive regions
        pointing_hit    INTEGER NOT NULL,        -- map maximum inside the regions
        deletion_auc    REAL NOT NULL,           -- lower is more faithful
        insertion_auc   REAL NOT NULL,           -- higher is more faithful
        confidence_drop REAL NOT NULL,           -- relative drop keeping the top 20% of the map
        PRIMARY KEY (run_id, method, layer, split, image)
    );
    CREATE TABLE explanation_summaries (
        run_id            TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        method            TEXT NOT NULL,
        layer             TEXT NOT NULL,
        split             TEXT NOT NULL,
        images            INTEGER NOT NULL,
        mask_source       TEXT NOT NULL,         -- masks (synthetic set) | template (aligned-crop regions)
        energy_in_mask    REAL NOT NULL,
        mask_area         REAL NOT NULL,         -- share of pixels inside the regions (what uniform attention scores)
        pointing_hit_rate REAL NOT NULL,
        deletion_auc      REAL NOT NULL,
        insertion_auc     REAL NOT NULL,
        confidence_drop   REAL NOT NULL,
        created_at        TEXT NOT NULL,
        PRIMARY KEY (run_id, method, layer, split)
    );
    CREATE TABLE randomization_checks (
        run_id           TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        method           TEXT NOT NULL,
        layer            TEXT NOT NULL,
        split            TEXT NOT NULL,
        stage            INTEGER NOT NULL,       -- 1 = top layer randomized, then cascading down
        randomized_down_to TEXT NOT NULL,
        rank_correlation REAL NOT NULL,          -- mean Spearman correlation with the trained model's maps
        PRIMARY KEY (run_id, method, layer, split, stage)
    );
    """

    /// Images per class in each split a run used, as JSON {"train": [6], "val": [6], "test": [6]} in class order.
    static let v3 = """
    ALTER TABLE runs ADD COLUMN class_counts TEXT;
    """

    /// The leaderboard groups by resolved spec, not by name: editing a spec
    /// file and re-running must not average old and new runs together.
    static let v4 = """
    DROP VIEW leaderboard;
    CREATE VIEW leaderboard AS
    SELECT e.name AS experiment, substr(e.spec_hash, 1, 12) AS spec, COUNT(*) AS runs,
           ROUND(AVG(r.best_val_accuracy), 4) AS mean_val_accuracy,
           ROUND(AVG(r.best_val_macro_f1), 4) AS mean_val_macro_f1,
           ROUND(AVG(r.test_accuracy), 4) AS mean_test_accuracy,
           MAX(r.params) AS params, MAX(r.finished_at) AS last_finished
    FROM runs r JOIN experiments e ON e.id = r.experiment_id
    WHERE r.status = 'completed'
    GROUP BY e.id
    ORDER BY mean_val_macro_f1 DESC, experiment;
    """

    /// Balanced accuracy (mean validation recall over classes with images)
    /// beside accuracy in both views: accuracy alone hides a model that
    /// never predicts the rare classes.
    static let v5 = """
    DROP VIEW run_summary;
    CREATE VIEW run_summary AS
    SELECT r.id AS run_id, e.name AS experiment,
           CASE WHEN r.status = 'running' AND r.heartbeat_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-120 seconds')
                THEN 'interrupted' ELSE r.status END AS status,
           r.seed, r.epochs_run, r.best_epoch,
           ROUND(r.best_val_accuracy, 4) AS val_accuracy,
           ROUND((SELECT AVG(c.recall) FROM class_metrics c WHERE c.run_id = r.id AND c.split = 'val'), 4) AS val_balanced_accuracy,
           ROUND(r.best_val_macro_f1, 4) AS val_macro_f1,
           ROUND(r.test_accuracy, 4) AS test_accuracy, ROUND(r.test_macro_f1, 4) AS test_macro_f1,
           (SELECT COUNT(*) FROM test_evaluations t WHERE t.run_id = r.id) AS test_looks,
           r.dataset_source, r.label_mode, r.n_train, r.n_val, r.n_test, r.params, r.threads,
           ROUND(r.train_seconds, 1) AS train_seconds, r.started_at, r.finished_at, r.git_commit, r.host
    FROM runs r JOIN experiments e ON e.id = r.experiment_id;
    DROP VIEW leaderboard;
    CREATE VIEW leaderboard AS
    SELECT e.name AS experiment, substr(e.spec_hash, 1, 12) AS spec, COUNT(*) AS runs,
           ROUND(AVG(r.best_val_accuracy), 4) AS mean_val_accuracy,
           ROUND(AVG((SELECT AVG(c.recall) FROM class_metrics c WHERE c.run_id = r.id AND c.split = 'val')), 4) AS mean_val_balanced_accuracy,
           ROUND(AVG(r.best_val_macro_f1), 4) AS mean_val_macro_f1,
           ROUND(AVG(r.test_accuracy), 4) AS mean_test_accuracy,
           MAX(r.params) AS params, MAX(r.finished_at) AS last_finished
    FROM runs r JOIN experiments e ON e.id = r.experiment_id
    WHERE r.status = 'completed'
    GROUP BY e.id
    ORDER BY mean_val_macro_f1 DESC, experiment;
    """
}
