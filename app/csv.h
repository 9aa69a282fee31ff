// Reading CSV tables (RFC 4180) with a header row: LUNA16 nodule lists,
// candidates.csv, truth and score tables.
//
// Accepted: comma separator; fields quoted with '"' (a doubled "" inside quotes
// is one quote; quoted fields may hold commas and line breaks); LF, CRLF or CR
// line ends; a UTF-8 byte-order mark; blank lines anywhere (skipped); a missing
// line end at the end of the file; blanks around a quoted field (dropped). Rejected with a bad-input error
// naming the file and the line: an unterminated quote, text after a closing quote, a quote inside an unquoted
// field, a row whose field count differs from the header's, an empty file (no header row), two columns with
// the same non-empty name. (Unnamed columns, as pandas writes for an index, are allowed.)
//
// Field values are kept verbatim; the accessors trim ASCII blanks where a value
// is interpreted (numbers, column names).
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/result.h"

namespace hilum {

struct CsvRow {
  size_t line = 0;  // 1-based line in the file where the row starts
  std::vector<std::string> fields;
};

class CsvTable {
 public:
  // The name errors use for the file ("truth.csv"; the path as given).
  const std::string& source() const { return source_; }
  const std::vector<std::string>& header() const { return header_; }
  const std::vector<CsvRow>& rows() const { return rows_; }
  size_t size() const { return rows_.size(); }

  // Index of the column whose (trimmed) name is `name`, or nullopt.
  std::optional<size_t> find_column(std::string_view name) const;
  // Index of the column, or a bad-input error
  // "<file>: missing column 'x' (columns: a, b, c)".
  Result<size_t> column(std::string_view name) const;

  // The raw field.
  const std::string& text(size_t row, size_t column) const { return rows_[row].fields[column]; }
  // The field with surrounding blanks removed.
  std::string_view trimmed(size_t row, size_t column) const;
  // The field as a finite decimal number (leading '+' and blanks allowed), or a
  // bad-input error "<file>:<line>: column 'x': 'abc' is not a number".
  Result<double> number(size_t row, size_t column) const;

  // "<file>:<line>: column 'x': " for callers that add their own complaint.
  std::string where(size_t row, size_t column) const;

 private:
  friend Result<CsvTable> parse_csv(std::string_view text, std::string source, bool has_header);
  std::string source_;
  std::vector<std::string> header_;
  std::vector<CsvRow> rows_;
};

// Parses `text`; `source` names it in errors. Without a header, header() is
// empty and every non-blank line is a row (rows may then differ in length).
Result<CsvTable> parse_csv(std::string_view text, std::string source, bool has_header = true);

// Reads and parses the file at `path` (errors name the path as given).
Result<CsvTable> read_csv(const std::filesystem::path& path, bool has_header = true);

// Parses a decimal number the way the table accessors do: optional blanks, an
// optional sign, digits with an optional fraction and exponent. No hex, no
// "nan"/"inf". Returns nullopt when `s` is not such a number.
std::optional<double> parse_decimal(std::string_view s);

// Quotes a field for writing when it holds a comma, quote, or line break.
std::string csv_quote(std::string_view field);

// A number for writing that reads back exactly (%.17g).
std::string csv_number(double v);

}  // namespace hilum
