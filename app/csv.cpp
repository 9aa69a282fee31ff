#include "app/csv.h"

#include <cstdio>
#include <charconv>
#include <cmath>
#include <set>

#include "model/file_io.h"

namespace hilum {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// Shortens a value for an error message (and keeps the message on one line).
std::string excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += (c == '\n' || c == '\r') ? ' ' : c;
  if (s.size() > 40) out += "...";
  return out;
}

}  // namespace

std::optional<double> parse_decimal(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::string_view digits = s;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  // from_chars would also take "inf", "nan" and "infinity": only digits or a
  // decimal point may start a number here.
  if (digits.empty() || !((digits.front() >= '0' && digits.front() <= '9') || digits.front() == '.')) {
    return std::nullopt;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, std::chars_format::general);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::string csv_quote(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::optional<size_t> CsvTable::find_column(std::string_view name) const {
  name = trim(name);
  for (size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == name) return i;
  }
  return std::nullopt;
}

Result<size_t> CsvTable::column(std::string_view name) const {
  if (auto i = find_column(name)) return *i;
  std::string names;
  for (const auto& h : header_) names += (names.empty() ? "" : ", ") + (h.empty() ? "\"\"" : h);
  return bad_input(source_ + ": missing column '" + std::string(trim(name)) + "' (columns: " + names + ")");
}

std::string_view CsvTable::trimmed(size_t row, size_t column) const { return trim(text(row, column)); }

std::string CsvTable::where(size_t row, size_t column) const {
  std::string col = column < header_.size() ? header_[column] : std::string("#") + std::to_string(column + 1);
  return source_ + ":" + std::to_string(rows_[row].line) + ": column '" + col + "': ";
}

Result<double> CsvTable::number(size_t row, size_t column) const {
  const std::string& s = text(row, column);
  if (auto v = parse_decimal(s)) return *v;
  if (trim(s).empty()) return bad_input(where(row, column) + "empty value, expected a number");
  return bad_input(where(row, column) + "'" + excerpt(s) + "' is not a number");
}

Result<CsvTable> parse_csv(std::string_view text, std::string source, bool has_header) {
  CsvTable table;
  table.source_ = std::move(source);
  const std::string& src = table.source_;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

  const size_t n = text.size();
  size_t i = 0;
  size_t line = 1;
  bool have_header = !has_header;
  while (i < n) {
    CsvRow row;
    row.line = line;
    bool any_quoted = false;
    while (true) {
      std::string field;
      // Blanks before an opening quote are tolerated (and dropped).
      size_t first = i;
      while (first < n && is_blank(text[first])) ++first;
      if (first < n && text[first] == '"') i = first;
      if (i < n && text[i] == '"') {
        any_quoted = true;
        const size_t open_line = line;
        ++i;
        while (true) {
          if (i >= n) {
            return bad_input(src + ":" + std::to_string(open_line) + ": quoted field is never closed");
          }
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n' || (c == '\r' && (i + 1 >= n || text[i + 1] != '\n'))) ++line;
          field += c;
          ++i;
        }
        while (i < n && is_blank(text[i])) ++i;
        if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          return bad_input(src + ":" + std::to_string(line) + ": unexpected text after a closing quote");
        }
      } else {
        const size_t start = i;
        while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          if (text[i] == '"') {
            return bad_input(src + ":" + std::to_string(line) +
                             ": quote inside an unquoted field (quote the whole field and double the quote)");
          }
          ++i;
        }
        field.assign(text.substr(start, i - start));
      }
      row.fields.push_back(std::move(field));
      if (i >= n) break;
      if (text[i] == ',') {
        ++i;
        continue;
      }
      // End of the record.
      if (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') ++i;
      ++i;
      ++line;
      break;
    }

    const bool blank = row.fields.size() == 1 && !any_quoted && trim(row.fields[0]).empty();
    if (blank) continue;
    if (!have_header) {
      std::set<std::string> seen;
      for (auto& name : row.fields) {
        name = std::string(trim(name));
        if (!name.empty() && !seen.insert(name).second) {
          return bad_input(src + ":" + std::to_string(row.line) + ": column '" + name +
                           "' appears twice in the header");
        }
      }
      table.header_ = std::move(row.fields);
      have_header = true;
      continue;
    }
    if (has_header && row.fields.size() != table.header_.size()) {
      return bad_input(src + ":" + std::to_string(row.line) + ": " + std::to_string(row.fields.size()) +
                       " fields, but the header has " + std::to_string(table.header_.size()));
    }
    table.rows_.push_back(std::move(row));
  }
  if (!have_header) return bad_input(src + ": empty file (no header row)");
  return table;
}

Result<CsvTable> read_csv(const std::filesystem::path& path, bool has_header) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return bad_input(path.string() + ": is a directory, expected a CSV file");
  auto bytes = read_file(path);
  if (!bytes.ok()) return bad_input(bytes.error().message());
  return parse_csv(*bytes, path.string(), has_header);
}

}  // namespace hilum
