/// Images laid out on a white page: the one grid builder behind data
/// contact sheets and explanation sheets, so both read the same way.
public enum Grid {
    /// Groups of tiles side by side, `perRow` groups to a row, `gap` pixels
    /// of white between groups. Each group is framed `frame` pixels wide in
    /// its `borders` colour; a group shorter than the longest repeats its
    /// last tile. Tiles are square, all as wide as the first, drawn `scale`x.
    public static func sheet(_ groups: [[RGBImage]], perRow: Int, gap: Int, frame: Int = 0,
                             borders: [(UInt8, UInt8, UInt8)] = [], scale: Int = 1) -> RGBImage {
        let S = groups[0][0].width * scale
        let tiles = groups.map(\.count).max()!
        let groupW = tiles * S + 2 * frame, groupH = S + 2 * frame
        let cols = min(perRow, groups.count), rows = (groups.count + perRow - 1) / perRow
        let w = cols * groupW + (cols + 1) * gap, h = rows * groupH + (rows + 1) * gap
        var px = [UInt8](repeating: 255, count: w * h * 3)
        for (f, group) in groups.enumerated() {
            let border = f < borders.count ? borders[f] : (255, 255, 255)
            let x0 = gap + (f % perRow) * (groupW + gap), y0 = gap + (f / perRow) * (groupH + gap)
            for y in 0..<groupH { for x in 0..<groupW {
                let o = ((y0 + y) * w + x0 + x) * 3
                let iy = y - frame, ix = x - frame
                if iy < 0 || ix < 0 || iy >= S || ix >= tiles * S {
                    px[o] = border.0; px[o + 1] = border.1; px[o + 2] = border.2
                } else {
                    let img = group[min(ix / S, group.count - 1)]
                    let s = ((iy / scale) * img.width + (ix % S) / scale) * 3
                    px[o] = img.pixels[s]; px[o + 1] = img.pixels[s + 1]; px[o + 2] = img.pixels[s + 2]
                }
            } }
        }
        return RGBImage(width: w, height: h, pixels: px)
    }
}
