import Specs
import Faces
import Failures
import Foundation
import Registry

public enum RunTable {
    public static func render(_ rows: [RunRow]) -> String {
        TextTable.render(
            ["run", "experiment", "status", "seed", "epochs", "best val acc", "val bal acc", "val macro-F1",
             "val recall % " + Compare.shortClass.joined(separator: " "), "test acc", "duration"],
            rows.map { r in
                [String(r.id.prefix(10)), r.experiment, r.status.rawValue, String(r.seed),
                 "\(r.bestEpoch.map { "\($0)/" } ?? "")\(r.epochsRun)",
                 Format.percent(r.bestValAccuracy), Format.percent(r.valBalancedAccuracy),
                 r.bestValMacroF1.map { String(format: "%.4f", $0) } ?? "-",
                 recallCells(r.valRecall), Format.percent(r.testAccuracy), r.trainSeconds.map { Format.duration($0) } ?? "-"]
            },
            rightAligned: [3, 4, 5, 6, 7, 8, 9, 10])
    }

    /// Recall per class as whole percents under the header's class abbreviations; "-" for a class without images.
    static func recallCells(_ recall: [Double?]) -> String {
        guard !recall.isEmpty else { return "-" }
        return zip(recall, Compare.shortClass).map { r, name in
            let cell = r.map { String(Int(($0 * 100).rounded())) } ?? "-"
            return String(repeating: " ", count: max(0, name.count - cell.count)) + cell
        }.joined(separator: " ")
    }
}
