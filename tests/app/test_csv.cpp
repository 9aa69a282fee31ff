#include <gtest/gtest.h>

#include "app/csv.h"
#include "tests/app/eval_test_util.h"

namespace hilum {
namespace {

using ::hilum::testing::TempDir;

CsvTable parse_ok(std::string_view text, bool has_header = true) {
  auto t = parse_csv(text, "t.csv", has_header);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message());
  return t.ok() ? std::move(t).value() : CsvTable();
}

std::string parse_error(std::string_view text) {
  auto t = parse_csv(text, "t.csv");
  EXPECT_FALSE(t.ok());
  if (t.ok()) return "";
  EXPECT_EQ(t.error().kind(), ErrorKind::kBadInput);
  return t.error().message();
}

TEST(Csv, PlainTableWithHeader) {
  CsvTable t = parse_ok("a,b,c\n1,2,3\n4,5,6\n");
  ASSERT_EQ(t.header(), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.text(1, 2), "6");
  EXPECT_EQ(t.rows()[0].line, 2u);
  EXPECT_EQ(t.rows()[1].line, 3u);
}

TEST(Csv, QuotingPerRfc4180) {
  CsvTable t = parse_ok("name,note\n\"Smith, J\",\"said \"\"hi\"\"\"\n\"two\nlines\",x\nlast,\"\"\n");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.text(0, 0), "Smith, J");
  EXPECT_EQ(t.text(0, 1), "said \"hi\"");
  EXPECT_EQ(t.text(1, 0), "two\nlines");
  EXPECT_EQ(t.rows()[2].line, 5u);  // the quoted line break counts
  EXPECT_EQ(t.text(2, 1), "");
}

TEST(Csv, CrlfCrBomBlankLinesAndMissingFinalNewline) {
  CsvTable t = parse_ok("\xEF\xBB\xBFx,y\r\n\r\n1,2\r\n   \r\n3,4\r5,6");
  ASSERT_EQ(t.header(), (std::vector<std::string>{"x", "y"}));
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.text(0, 1), "2");
  EXPECT_EQ(t.text(1, 0), "3");
  EXPECT_EQ(t.text(2, 1), "6");
  EXPECT_EQ(t.rows()[0].line, 3u);
  EXPECT_EQ(t.rows()[2].line, 6u);
}

TEST(Csv, BlanksAroundQuotedFieldsAndHeaderNames) {
  CsvTable t = parse_ok(" \"a\" , b \n \"1\" , 2 \n");
  ASSERT_EQ(t.header(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.text(0, 0), "1");
  EXPECT_EQ(t.text(0, 1), " 2 ");
  EXPECT_EQ(*t.number(0, 1), 2.0);
  EXPECT_EQ(*t.column(" b"), 1u);
}

TEST(Csv, TrailingCommaGivesEmptyField) {
  CsvTable t = parse_ok("a,b\n1,\n");
  EXPECT_EQ(t.text(0, 1), "");
}

TEST(Csv, Numbers) {
  CsvTable t = parse_ok("v\n1.5\n-2e-3\n+7\n.25\nabc\nnan\ninf\n\n0x10\n1.5.2\n\" \"\n");
  EXPECT_EQ(*t.number(0, 0), 1.5);
  EXPECT_EQ(*t.number(1, 0), -0.002);
  EXPECT_EQ(*t.number(2, 0), 7.0);
  EXPECT_EQ(*t.number(3, 0), 0.25);
  for (size_t r = 4; r < t.size(); ++r) EXPECT_FALSE(t.number(r, 0).ok()) << t.text(r, 0);
  auto bad = t.number(4, 0);
  EXPECT_EQ(bad.error().message(), "t.csv:6: column 'v': 'abc' is not a number");
  EXPECT_EQ(t.number(9, 0).error().message(), "t.csv:12: column 'v': empty value, expected a number");
}

TEST(Csv, MissingColumnNamesTheFileAndTheColumns) {
  CsvTable t = parse_ok("seriesuid,coordX\n1,2\n");
  auto c = t.column("probability");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().kind(), ErrorKind::kBadInput);
  EXPECT_EQ(c.error().message(), "t.csv: missing column 'probability' (columns: seriesuid, coordX)");
}

TEST(Csv, Errors) {
  EXPECT_EQ(parse_error(""), "t.csv: empty file (no header row)");
  EXPECT_EQ(parse_error("\xEF\xBB\xBF\r\n\n"), "t.csv: empty file (no header row)");
  EXPECT_EQ(parse_error("a,b\n1,2\n3\n"), "t.csv:3: 1 fields, but the header has 2");
  EXPECT_EQ(parse_error("a,b\n1,2,3\n"), "t.csv:2: 3 fields, but the header has 2");
  EXPECT_EQ(parse_error("a,b\n1,\"open\n\n"), "t.csv:2: quoted field is never closed");
  EXPECT_EQ(parse_error("a,b\n\"x\"y,2\n"), "t.csv:2: unexpected text after a closing quote");
  EXPECT_NE(parse_error("a,b\nx\"y,2\n").find("t.csv:2: quote inside an unquoted field"), std::string::npos);
  EXPECT_EQ(parse_error("a,b,a\n1,2,3\n"), "t.csv:1: column 'a' appears twice in the header");
}

TEST(Csv, UnnamedColumnsAllowed) {
  CsvTable t = parse_ok(",a,\n0,1,2\n");
  EXPECT_EQ(*t.column("a"), 1u);
}

TEST(Csv, WithoutHeaderRowsMayDifferInLength) {
  CsvTable t = parse_ok("1.2.3\n\n4.5.6,extra\n", /*has_header=*/false);
  EXPECT_TRUE(t.header().empty());
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.text(1, 0), "4.5.6");
  EXPECT_EQ(t.rows()[1].line, 3u);
}

TEST(Csv, ReadFileErrorsNameThePath) {
  TempDir dir("csv");
  auto missing = read_csv(dir / "none.csv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(missing.error().message().find("none.csv: cannot open"), std::string::npos);
  auto is_dir = read_csv(dir.path());
  ASSERT_FALSE(is_dir.ok());
  EXPECT_NE(is_dir.error().message().find("is a directory"), std::string::npos);
  hilum::testing::write_text(dir / "ok.csv", "a\n1\n");
  auto ok = read_csv(dir / "ok.csv");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->source(), (dir / "ok.csv").string());
}

TEST(Csv, QuoteForWriting) {
  EXPECT_EQ(csv_quote("plain"), "plain");
  EXPECT_EQ(csv_quote("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_quote("say \"x\""), "\"say \"\"x\"\"\"");
  CsvTable t = parse_ok("v\n" + csv_quote("a,\"b\"\nc") + "\n");
  EXPECT_EQ(t.text(0, 0), "a,\"b\"\nc");
}

}  // namespace
}  // namespace hilum
