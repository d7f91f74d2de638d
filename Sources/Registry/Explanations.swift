import Foundation
import GRDB

extension Registry {
    /// Per-image scores of `method` beside another method's (the centre
    /// prior's) on the same images, over every run of an experiment that was
    /// explained: (energy, other's energy, hit, other's hit).
    public func pairedExplanationScores(experiment: String, layer: String, method: ExplanationMethod,
                                        against other: ExplanationMethod) throws
        -> [(energy: Double, otherEnergy: Double, hit: Bool, otherHit: Bool)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT m.energy_in_mask AS energy, o.energy_in_mask AS other_energy, m.pointing_hit AS hit, o.pointing_hit AS other_hit
                FROM explanations m
                JOIN explanations o
                  ON o.run_id = m.run_id AND o.layer = m.layer AND o.split = m.split AND o.image = m.image AND o.method = ?
                JOIN runs r ON r.id = m.run_id JOIN experiments e ON e.id = r.experiment_id
                WHERE e.name = ? AND m.layer = ? AND m.method = ?
                ORDER BY m.run_id, m.split, m.image
                """, arguments: [other, experiment, layer, method])
                .map { ($0["energy"], $0["other_energy"], $0["hit"], $0["other_hit"]) }
        }
    }

    /// Replaces the explanation records of (run, layer, split) in one
    /// transaction: the per-image rows, their per-method summary, and the
    /// randomization check's stages (by method: layer randomized down to,
    /// rank correlation).
    public func recordExplanations(run: String, layer: String, split: EvalSplit, maskSource: String, maskArea: Double,
                                   rows: [Explanation], randomization: [ExplanationMethod: [(String, Double)]]) throws {
        try write { db in
            let mine = Explanation.Columns.runId == run && Explanation.Columns.layer == layer && Explanation.Columns.split == split
            try Explanation.filter(mine).deleteAll(db)
            try ExplanationSummary.filter(mine).deleteAll(db)
            try RandomizationCheck.filter(mine).deleteAll(db)
            for r in rows { try r.insert(db) }
            try db.execute(sql: """
                INSERT INTO explanation_summaries (run_id, method, layer, split, images, mask_source, energy_in_mask, mask_area,
                                                   pointing_hit_rate, deletion_auc, insertion_auc, confidence_drop, created_at)
                SELECT run_id, method, layer, split, COUNT(*), ?, AVG(energy_in_mask), ?, AVG(pointing_hit),
                       AVG(deletion_auc), AVG(insertion_auc), AVG(confidence_drop), ?
                FROM explanations WHERE run_id = ? AND layer = ? AND split = ? GROUP BY method
                """, arguments: [maskSource, maskArea, Registry.timestamp(), run, layer, split])
            for (method, stages) in randomization {
                for (i, s) in stages.enumerated() {
                    try RandomizationCheck(runId: run, method: method, layer: layer, split: split, stage: i + 1,
                                           randomizedDownTo: s.0, rankCorrelation: s.1).insert(db)
                }
            }
        }
    }
}
