import Foundation
import GRDB

extension Registry {
    public struct ExplanationRow: Sendable {
        public var method, layer, split, image, targetClass, predictedClass, trueClass: String
        public var energyInMask: Double, pointingHit: Bool, deletionAUC: Double, insertionAUC: Double, confidenceDrop: Double
        public init(method: String, layer: String, split: String, image: String, targetClass: String, predictedClass: String,
                    trueClass: String, energyInMask: Double, pointingHit: Bool, deletionAUC: Double, insertionAUC: Double,
                    confidenceDrop: Double) {
            self.method = method; self.layer = layer; self.split = split; self.image = image; self.targetClass = targetClass
            self.predictedClass = predictedClass; self.trueClass = trueClass; self.energyInMask = energyInMask
            self.pointingHit = pointingHit; self.deletionAUC = deletionAUC; self.insertionAUC = insertionAUC
            self.confidenceDrop = confidenceDrop
        }
    }

    /// Per-image scores of `method` beside another method's (the centre
    /// prior's) on the same images, over every run of an experiment that was
    /// explained: (energy, other's energy, hit, other's hit).
    public func pairedExplanationScores(experiment: String, layer: String, method: String, against other: String) throws
        -> [(energy: Double, otherEnergy: Double, hit: Bool, otherHit: Bool)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT m.energy_in_mask, o.energy_in_mask, m.pointing_hit, o.pointing_hit
                FROM explanations m
                JOIN explanations o ON o.run_id = m.run_id AND o.layer = m.layer AND o.split = m.split AND o.image = m.image AND o.method = ?
                JOIN runs r ON r.id = m.run_id JOIN experiments e ON e.id = r.experiment_id
                WHERE e.name = ? AND m.layer = ? AND m.method = ?
                ORDER BY m.run_id, m.split, m.image
                """, arguments: [other, experiment, layer, method])
                .map { ($0[0], $0[1], $0[2], $0[3]) }
        }
    }

    /// Replaces the explanation records of (run, layer, split) in one transaction.
    public func recordExplanations(run: String, layer: String, split: String, maskSource: String, maskArea: Double,
                                   rows: [ExplanationRow], randomization: [String: [(String, Double)]]) throws {
        try write { db in
            for t in ["explanations", "explanation_summaries", "randomization_checks"] {
                try db.execute(sql: "DELETE FROM \(t) WHERE run_id = ? AND layer = ? AND split = ?", arguments: [run, layer, split])
            }
            let stmt = try db.makeStatement(sql: "INSERT INTO explanations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for r in rows {
                try stmt.execute(arguments: [run, r.method, r.layer, r.split, r.image, r.targetClass, r.predictedClass, r.trueClass,
                                             r.energyInMask, r.pointingHit, r.deletionAUC, r.insertionAUC, r.confidenceDrop])
            }
            try db.execute(sql: """
                INSERT INTO explanation_summaries
                SELECT run_id, method, layer, split, COUNT(*), ?, AVG(energy_in_mask), ?, AVG(pointing_hit),
                       AVG(deletion_auc), AVG(insertion_auc), AVG(confidence_drop), ?
                FROM explanations WHERE run_id = ? AND layer = ? AND split = ? GROUP BY method
                """, arguments: [maskSource, maskArea, Registry.timestamp(), run, layer, split])
            for (method, stages) in randomization {
                for (i, s) in stages.enumerated() {
                    try db.execute(sql: "INSERT INTO randomization_checks VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   arguments: [run, method, layer, split, i + 1, s.0, s.1])
                }
            }
        }
    }
}
