# Reference ROC numbers from R's pROC for tests/app/test_eval_roc.cpp.
#
#   Rscript tests/golden/eval_proc.R FILE,LABEL,SCORE[,SCORE_B] ...
#
# For every spec prints tab-separated lines "FILE<TAB>key<TAB>value" (values
# with 17 significant digits): auc, ci_low, ci_high, variance (DeLong),
# youden_threshold, youden_sensitivity, youden_specificity, youden_rows (the
# number of tied best points pROC lists), and for two score columns also auc_b,
# ci_low_b, ci_high_b, z and p_value of the paired DeLong test. Labels are 0/1;
# a higher score means positive (direction "<").
# Exits with status 3 when pROC is not installed (the test then skips).
if (!suppressWarnings(requireNamespace("pROC", quietly = TRUE))) {
  cat("pROC is not installed\n", file = stderr())
  quit(status = 3)
}
suppressPackageStartupMessages(library(pROC))

out <- function(file, key, value) cat(file, "\t", key, "\t", sprintf("%.17g", value), "\n", sep = "")

for (spec in commandArgs(trailingOnly = TRUE)) {
  parts <- strsplit(spec, ",", fixed = TRUE)[[1]]
  file <- parts[1]
  d <- read.csv(file, check.names = FALSE, strip.white = TRUE)
  labels <- d[[parts[2]]]
  fit <- function(col) roc(labels, d[[col]], direction = "<", levels = c(0, 1), quiet = TRUE)
  r <- suppressWarnings(fit(parts[3]))
  ci <- suppressWarnings(ci.auc(r, method = "delong"))
  out(file, "auc", as.numeric(auc(r)))
  out(file, "ci_low", ci[1])
  out(file, "ci_high", ci[3])
  out(file, "variance", suppressWarnings(var(r, method = "delong")))
  best <- coords(r, "best", best.method = "youden", ret = c("threshold", "sensitivity", "specificity"),
                 transpose = FALSE)
  out(file, "youden_threshold", best$threshold[1])
  out(file, "youden_sensitivity", best$sensitivity[1])
  out(file, "youden_specificity", best$specificity[1])
  out(file, "youden_rows", nrow(best))
  if (length(parts) >= 4) {
    r2 <- suppressWarnings(fit(parts[4]))
    ci2 <- suppressWarnings(ci.auc(r2, method = "delong"))
    t <- suppressWarnings(roc.test(r, r2, method = "delong", paired = TRUE))
    out(file, "auc_b", as.numeric(auc(r2)))
    out(file, "ci_low_b", ci2[1])
    out(file, "ci_high_b", ci2[3])
    out(file, "z", as.numeric(t$statistic))
    out(file, "p_value", t$p.value)
  }
}
