// pacs.json parsing: defaults, overrides, and every way a file can be wrong
// (unknown field, wrong type, out of range, missing, bad AE title) gives a
// bad-input error naming the file and the field.
#include <gtest/gtest.h>

#include <fstream>

#include "app/pacs/pacs_client.h"
#include "app/pacs/pacs_config.h"
#include "tests/support/test_support.h"

namespace hilum::pacs {
namespace {

Result<Config> parse(const std::string& text) { return parse_config(text, "pacs.json", "/etc/hilum"); }

// Expects a bad-input error whose message contains every fragment.
void expect_bad(const std::string& text, std::initializer_list<std::string> fragments) {
  auto r = parse(text);
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  for (const auto& f : fragments)
    EXPECT_NE(r.error().message().find(f), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << "one line: " << r.error().message();
}

TEST(PacsConfig, ReadsNodesWithDefaultsAndOverrides) {
  auto r = parse(R"({
    "calling_ae": "HILUM_WS1",
    "timeouts": {"connect": 3},
    "default_node": "archive",
    "nodes": {
      "archive": {"ae_title": "ARCHIVE", "host": "pacs.example.org", "port": 11112,
                  "timeouts": {"dimse": 120}, "storage_port": 4006, "description": "main archive"},
      "orthanc": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": 4242, "calling_ae": "HILUM2",
                  "max_pdu": 65536, "move_destination": "HILUM_RX",
                  "tls": {"ca": "certs/ca.pem", "cert": "/abs/client.pem", "key": "client.key"}}
    }})");
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Config& c = *r;
  ASSERT_EQ(c.nodes.size(), 2u);
  auto archive = c.node("");
  ASSERT_TRUE(archive.ok());
  EXPECT_EQ(archive->name, "archive");
  EXPECT_EQ(archive->ae_title, "ARCHIVE");
  EXPECT_EQ(archive->port, 11112);
  EXPECT_EQ(archive->calling_ae, "HILUM_WS1");  // top-level default
  EXPECT_EQ(archive->timeouts.connect_s, 3);    // top-level default
  EXPECT_EQ(archive->timeouts.dimse_s, 120);    // node's own
  EXPECT_EQ(archive->timeouts.acse_s, Timeouts{}.acse_s);
  EXPECT_EQ(archive->storage_port, 4006);
  EXPECT_EQ(archive->move_destination_ae(), "HILUM_WS1");
  EXPECT_FALSE(archive->tls.enabled);
  EXPECT_EQ(archive->address(), "ARCHIVE@pacs.example.org:11112");

  auto orthanc = c.node("orthanc");
  ASSERT_TRUE(orthanc.ok());
  EXPECT_EQ(orthanc->calling_ae, "HILUM2");
  EXPECT_EQ(orthanc->max_pdu, 65536u);
  EXPECT_EQ(orthanc->move_destination_ae(), "HILUM_RX");
  EXPECT_TRUE(orthanc->tls.enabled);
  EXPECT_EQ(orthanc->tls.ca_file, std::filesystem::path("/etc/hilum/certs/ca.pem"));  // relative to the file
  EXPECT_EQ(orthanc->tls.cert_file, std::filesystem::path("/abs/client.pem"));
  EXPECT_TRUE(orthanc->tls.verify_peer);
}

TEST(PacsConfig, OnlyNodeIsTheDefault) {
  auto r = parse(R"({"nodes": {"a": {"ae_title": "A", "host": "h", "port": 104}}})");
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto n = r->node("");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->name, "a");
}

TEST(PacsConfig, NodeSelectionErrorsNameTheChoices) {
  auto r = parse(R"({"nodes": {"a": {"ae_title": "A", "host": "h", "port": 104},
                               "b": {"ae_title": "B", "host": "h", "port": 105}}})");
  ASSERT_TRUE(r.ok());
  auto none = r->node("");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("--node"), std::string::npos);
  auto missing = r->node("c");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(missing.error().message().find("'c'"), std::string::npos);
  EXPECT_NE(missing.error().message().find("a, b"), std::string::npos);
}

TEST(PacsConfig, UnknownFieldsAreErrorsNamingTheField) {
  expect_bad(R"({"nodes": {}, "colour": "blue"})", {"pacs.json", "colour", "unknown field"});
  expect_bad(R"({"nodes": {"main": {"ae_title": "A", "host": "h", "port": 104, "prot": 1}}})",
             {"pacs.json", "nodes.main.prot", "unknown field"});
  expect_bad(
      R"({"nodes": {"main": {"ae_title": "A", "host": "h", "port": 104, "tls": {"ca": "x", "pem": "y"}}}})",
      {"nodes.main.tls.pem", "unknown field"});
  expect_bad(R"({"nodes": {"main": {"ae_title": "A", "host": "h", "port": 104, "timeouts": {"read": 5}}}})",
             {"nodes.main.timeouts.read", "unknown field"});
}

TEST(PacsConfig, WrongTypesAndRangesAreErrors) {
  expect_bad("not json", {"pacs.json", "not valid JSON"});
  expect_bad("[1, 2]", {"pacs.json", "expected a JSON object"});
  expect_bad(R"({"nodes": []})", {"nodes", "expected a JSON object"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": "104"}}})",
             {"nodes.m.port", "integer"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": 70000}}})",
             {"nodes.m.port", "out of range"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": 104, "max_pdu": 100}}})",
             {"nodes.m.max_pdu", "out of range"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": 104, "timeouts": {"dimse": 0}}}})",
             {"nodes.m.timeouts.dimse", "out of range"});
  expect_bad(R"({"nodes": {"m": {"ae_title": 7, "host": "h", "port": 104}}})",
             {"nodes.m.ae_title", "string"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": 104, "tls": {"verify_peer": "no"}}}})",
             {"nodes.m.tls.verify_peer", "true or false"});
}

TEST(PacsConfig, MissingFieldsAreErrors) {
  expect_bad("{}", {"pacs.json", "nodes", "missing"});
  expect_bad(R"({"nodes": {"m": {"host": "h", "port": 104}}})", {"nodes.m.ae_title", "missing"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "A", "port": 104}}})", {"nodes.m.host", "missing"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "A", "host": "h"}}})", {"nodes.m.port", "missing"});
  expect_bad(R"({"default_node": "x", "nodes": {"m": {"ae_title": "A", "host": "h", "port": 1}}})",
             {"default_node", "'x'"});
}

TEST(PacsConfig, AeTitlesAreChecked) {
  expect_bad(R"({"nodes": {"m": {"ae_title": "THIS_IS_TOO_LONG_AE", "host": "h", "port": 104}}})",
             {"nodes.m", "ae_title", "16 characters"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "A\\B", "host": "h", "port": 104}}})",
             {"ae_title", "backslash"});
  expect_bad(R"({"nodes": {"m": {"ae_title": "   ", "host": "h", "port": 104}}})", {"ae_title", "blank"});
  expect_bad(R"({"calling_ae": "", "nodes": {"m": {"ae_title": "A", "host": "h", "port": 104}}})",
             {"calling_ae", "empty"});
  EXPECT_EQ(ae_title_problem("HILUM"), "");
  EXPECT_EQ(ae_title_problem("SIXTEEN_CHARS_AE"), "");
}

TEST(PacsConfig, TlsFilesMustExistAndGoTogether) {
  test::ScratchDir dir;
  const auto ca = dir / "ca.pem";
  std::ofstream(ca) << "not checked here";
  // Files are checked when the node is used, not when the file is read.
  auto missing = parse(R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": 104,
                                             "tls": {"ca": "/nonexistent/ca.pem"}}}})");
  ASSERT_TRUE(missing.ok()) << missing.error().message();
  const Status unreadable = validate_node(missing->nodes.at("m"), "node m");
  ASSERT_FALSE(unreadable.ok());
  EXPECT_EQ(unreadable.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(unreadable.error().message().find("tls ca file /nonexistent/ca.pem"), std::string::npos)
      << unreadable.error().message();
  auto only_cert = parse_config(R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": 104,
                                      "tls": {"ca": "ca.pem", "cert": "ca.pem"}}}})",
                                "pacs.json", dir.path());
  ASSERT_FALSE(only_cert.ok());
  EXPECT_NE(only_cert.error().message().find("cert and key go together"), std::string::npos);
  auto no_ca = parse_config(R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": 104, "tls": {}}}})",
                            "pacs.json", dir.path());
  ASSERT_FALSE(no_ca.ok());
  EXPECT_NE(no_ca.error().message().find("ca file"), std::string::npos);
  auto off = parse_config(
      R"({"nodes": {"m": {"ae_title": "A", "host": "h", "port": 104, "tls": {"enabled": false}}}})",
      "pacs.json", dir.path());
  ASSERT_TRUE(off.ok()) << off.error().message();
  EXPECT_FALSE(off->nodes.at("m").tls.enabled);
}

TEST(PacsConfig, LoadConfigNamesAMissingFile) {
  auto r = load_config("/nonexistent/pacs.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kBadInput);
  EXPECT_NE(r.error().message().find("/nonexistent/pacs.json"), std::string::npos);
}

TEST(PacsConfig, DateRangesAreChecked) {
  EXPECT_EQ(date_range_problem(""), "");
  EXPECT_EQ(date_range_problem("20260101"), "");
  EXPECT_EQ(date_range_problem("20260101-20261231"), "");
  EXPECT_EQ(date_range_problem("20260101-"), "");
  EXPECT_EQ(date_range_problem("-20261231"), "");
  EXPECT_NE(date_range_problem("2026-01-01"), "");
  EXPECT_NE(date_range_problem("20261301"), "");
  EXPECT_NE(date_range_problem("20261231-20260101"), "");
  EXPECT_NE(date_range_problem("-"), "");
  EXPECT_NE(date_range_problem("yesterday"), "");
}

TEST(PacsConfig, InstancePathsUseUidsAndStaySafe) {
  const auto p = instance_path("/out", "1.2.3", "1.2.3.4", "1.2.3.4.5");
  EXPECT_EQ(p, std::filesystem::path("/out/1.2.3/1.2.3.4/1.2.3.4.5.dcm"));
  const auto q = instance_path("/out", "../../etc", "1.2", "x/y");
  EXPECT_EQ(q.parent_path().parent_path().parent_path(), std::filesystem::path("/out"));
  EXPECT_EQ(q.string().find(".."), std::string::npos);
  EXPECT_EQ(q.filename().string().find('/'), std::string::npos);
}

}  // namespace
}  // namespace hilum::pacs
