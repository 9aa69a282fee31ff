"""Compares two LUNA16 candidate CSVs of one study (seriesuid,coordX,coordY,coordZ,probability):
how many rows of the first have no row of the second within 0.01 mm, the largest distance and
probability difference among the matched ones, and whether the first 20 rows are in the same order.
Used by scripts/gpu/e2e_analyze.sh (CPU vs CUDA detector)."""
import csv
import math
import sys


def rows(path):
    with open(path, newline="") as f:
        return [(float(r["coordX"]), float(r["coordY"]), float(r["coordZ"]), float(r["probability"]))
                for r in csv.DictReader(f)]


def main(a_path, b_path, tol=0.01):
    a, b = rows(a_path), rows(b_path)
    unmatched, worst_d, worst_p = 0, 0.0, 0.0
    for x in a:
        y = min(b, key=lambda y: math.dist(x[:3], y[:3]), default=None)
        d = math.dist(x[:3], y[:3]) if y else math.inf
        if d > tol:
            unmatched += 1
        else:
            worst_d, worst_p = max(worst_d, d), max(worst_p, abs(x[3] - y[3]))
    same_top = all(math.dist(x[:3], y[:3]) <= tol for x, y in zip(a[:20], b[:20]))
    print(f"{len(a)} vs {len(b)} candidates; {unmatched} of the first without one of the second "
          f"within {tol} mm; matched: distance <= {worst_d:.2g} mm, |probability difference| <= "
          f"{worst_p:.2g}; first 20 in the same order: {'yes' if same_top else 'no'}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
