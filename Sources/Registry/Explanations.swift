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
