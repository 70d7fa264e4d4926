// The product's CSV writer and line reader (app/util/csv.hpp): quoting of text fields that
// would shift columns, the number formats, the row-width check, and the round trip.
#include <catch2/catch.hpp>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/util/csv.hpp"

using namespace metaplast::util;

TEST_CASE("plain text stays as it is; a comma, quote or line break is quoted") {
  CHECK(csv_field("mnist") == "mnist");
  CHECK(csv_field("") == "");
  CHECK(csv_field("m*=2, seed 1") == "\"m*=2, seed 1\"");
  CHECK(csv_field("bob's \"best\"") == "\"bob's \"\"best\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
  CHECK(csv_field("cr\r") == "\"cr\r\"");
}

TEST_CASE("rows follow the header, numbers in the stated format") {
  CsvWriter csv({"group", "epoch", "mean", "g"});
  csv.text("m*=2, rule=interval").integer(3).number(0.91234567, "%.6f").number(1.0 / 3).end_row();
  csv.text("plain").integer(std::uint64_t{18446744073709551615u}).number(-0.5, "%.1f");
  csv.number(1e-7).end_row();
  CHECK(csv.rows() == 2);
  CHECK(csv.str() ==
        "group,epoch,mean,g\n"
        "\"m*=2, rule=interval\",3,0.912346,0.333333\n"
        "plain,18446744073709551615,-0.5,1e-07\n");
}

TEST_CASE("the default number format is what a default std::ostream writes") {
  for (double v : {0.0, 1.0, 0.1, 123456.0, 1234567.0, 3.14159265358979, 1e-5, -2.5e10}) {
    std::ostringstream expected;
    expected << v;
    CsvWriter csv({"v"});
    csv.number(v).end_row();
    CHECK(csv.str() == "v\n" + expected.str() + "\n");
  }
}

TEST_CASE("a row of the wrong width is refused") {
  CsvWriter csv({"a", "b"});
  csv.integer(1);
  CHECK_THROWS_AS(csv.end_row(), std::logic_error);
  CsvWriter wide({"a"});
  wide.integer(1).integer(2);
  CHECK_THROWS_AS(wide.end_row(), std::logic_error);
}

TEST_CASE("take() hands over the text written since the last take, for appended files") {
  CsvWriter csv({"task", "n"});
  CHECK(csv.take() == "task,n\n");
  csv.text("fashion").integer(7).end_row();
  CHECK(csv.take() == "fashion,7\n");
  CHECK(csv.take().empty());
  csv.text("mnist");
  CHECK_THROWS_AS(csv.take(), std::logic_error);
}

TEST_CASE("csv_split reads back every field the writer writes") {
  const std::vector<std::string> fields = {"a,b", "", "say \"hi\"", "plain", "x\ny", ","};
  CsvWriter csv({"1", "2", "3", "4", "5", "6"});
  for (const auto& f : fields) csv.text(f);
  csv.end_row();
  const std::string text = csv.str();
  const auto first_break = text.find('\n');
  std::string row = text.substr(first_break + 1);
  row.pop_back();  // the row's line break
  CHECK(csv_split(row) == fields);
  CHECK(csv_split("") == std::vector<std::string>{""});
  CHECK(csv_split("a,,b,") == std::vector<std::string>{"a", "", "b", ""});
}

TEST_CASE("csv_split refuses a broken quoted field") {
  CHECK_THROWS_AS(csv_split("\"never closed,1"), std::invalid_argument);
  CHECK_THROWS_AS(csv_split("\"closed\"junk,1"), std::invalid_argument);
  CHECK_FALSE(try_csv_split("\"never closed,1").has_value());
  CHECK(try_csv_split("a,\"b,c\"") == std::vector<std::string>{"a", "b,c"});
}
