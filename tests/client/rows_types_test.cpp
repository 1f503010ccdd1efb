// Rows (iteration, access by name and index, tuples, row_traits) and the types of
// usher/types.hpp, both directions, against the real server.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <tuple>

#include "test_support.hpp"

namespace {

struct User {
  long id;
  std::string name;
  std::optional<std::string> email;
};

// A decimal type of the user's own: numeric(12,2) as a count of cents.
struct Cents {
  long long cents;
  friend bool operator==(const Cents&, const Cents&) = default;
};

}  // namespace

template <>
struct usher::row_traits<User> {
  static User from_row(const usher::Row& r) {
    return {r.get<long>("id"), r.get<std::string>("name"), r.get<std::optional<std::string>>("email")};
  }
};

template <>
struct usher::value_traits<Cents> {
  static constexpr usher::oid type_oid = usher::type_oids::numeric;
  static std::string to_text(const Cents& c) {
    long long a = c.cents < 0 ? -c.cents : c.cents;
    return fmt::format("{}{}.{:02d}", c.cents < 0 ? "-" : "", a / 100, a % 100);
  }
  static Cents from_text(std::string_view text, usher::oid) {
    auto dot = text.find('.');
    if (dot == std::string_view::npos || text.size() - dot != 3)
      throw usher::TypeMismatch("'" + std::string(text) + "' is not numeric(12,2)");
    bool negative = text.starts_with("-");
    long long whole = usher::detail::parse_number<long long>(text.substr(negative, dot - negative), "numeric");
    long long frac = usher::detail::parse_number<long long>(text.substr(dot + 1), "numeric");
    return Cents{(negative ? -1 : 1) * (whole * 100 + frac)};
  }
};

namespace usher::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace std::chrono;

using RowsTest = ConnectionFixture;
using TypesTest = ConnectionFixture;

TEST_F(RowsTest, IterateByNameIndexTupleAndStruct) {
  auto r = conn.exec(
      "SELECT g AS id, 'user' || g AS name, CASE WHEN g % 2 = 0 THEN 'u' || g || '@x' END AS email "
      "FROM generate_series(1, 5) g ORDER BY g");
  long sum = 0;
  std::size_t seen = 0;
  for (auto row : r) {
    EXPECT_EQ(row.index(), seen++);
    sum += row.get<long>("id");
    EXPECT_EQ(row.get<std::string>(1), "user" + std::to_string(row.get<long>(0)));
    EXPECT_EQ(row["name"].as<std::string>(), row.get<std::string>("name"));
    EXPECT_EQ(row[2].is_null(), row.get<long>("id") % 2 == 1);
  }
  EXPECT_EQ(seen, 5u);
  EXPECT_EQ(sum, 15);
  EXPECT_EQ(std::count_if(r.begin(), r.end(), [](Row row) { return row.is_null("email"); }), 3);

  auto [id, name, email] = r[1].as<std::tuple<int, std::string, std::optional<std::string>>>();
  EXPECT_EQ(id, 2);
  EXPECT_EQ(name, "user2");
  EXPECT_EQ(email, "u2@x");
  User u = r.row(3).as<User>();
  EXPECT_EQ(u.id, 4);
  EXPECT_EQ(u.name, "user4");
  EXPECT_EQ(u.email, "u4@x");
  EXPECT_EQ(r[0].as<User>().email, std::nullopt);

  EXPECT_THROW((r[0].as<std::tuple<int, std::string>>()), TypeMismatch);  // 3 columns
  EXPECT_THROW(r.row(5), std::out_of_range);
  EXPECT_THROW(r[0]["nope"], std::out_of_range);
  // The old interface is unchanged.
  EXPECT_EQ(r.get<int>(4, "id"), 5);
  EXPECT_EQ(r.rows(), 5u);
}

TEST_F(RowsTest, EmptyResultIteratesNothing) {
  auto r = conn.exec("SELECT 1 AS x WHERE false");
  EXPECT_EQ(r.begin(), r.end());
  for (auto row : r) ADD_FAILURE() << row.index();
}

TEST_F(TypesTest, IntegersBoolFloatsRoundTripRangeChecked) {
  auto r = conn.exec("SELECT $1::int2, $2::int4, $3::int8, $4, $5, $6::bool, $7::float4, $8::float8, $9",
                     std::numeric_limits<std::int16_t>::min(), std::numeric_limits<std::int32_t>::max(),
                     std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::uint32_t>::max(),
                     std::uint16_t{65535}, false, 1.5f, -0.1, std::uint64_t{1} << 63 >> 1);
  EXPECT_EQ(r.get<std::int16_t>(0, 0), std::numeric_limits<std::int16_t>::min());
  EXPECT_EQ(r.get<std::int32_t>(0, 1), std::numeric_limits<std::int32_t>::max());
  EXPECT_EQ(r.get<std::int64_t>(0, 2), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(r.column_type(3), type_oids::int8);  // uint32 needs int8
  EXPECT_EQ(r.get<std::uint32_t>(0, 3), std::numeric_limits<std::uint32_t>::max());
  EXPECT_EQ(r.column_type(4), type_oids::int4);
  EXPECT_EQ(r.get<std::uint16_t>(0, 4), 65535);
  EXPECT_FALSE(r.get<bool>(0, 5));
  EXPECT_EQ(r.get<float>(0, 6), 1.5f);
  EXPECT_EQ(r.get<double>(0, 7), -0.1);
  EXPECT_EQ(r.get<std::uint64_t>(0, 8), std::uint64_t{1} << 62);
  EXPECT_THROW(r.get<std::int16_t>(0, 1), TypeMismatch);   // int4 max does not fit
  EXPECT_THROW(r.get<std::uint64_t>(0, 2), TypeMismatch);  // negative
  EXPECT_THROW(conn.exec("SELECT $1", std::numeric_limits<std::uint64_t>::max()), InvalidParameter);
}

TEST_F(TypesTest, NumericJsonUuidAndAUserDecimal) {
  Numeric big{"12345678901234567890.000000000000000001"};
  Uuid id = Uuid::parse("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11");
  auto r = conn.exec("SELECT $1::numeric, $2::jsonb, $3::json, $4::uuid, $5::numeric(12,2), "
                     "($5::numeric(12,2) * 2)::numeric(12,2)",
                     big, Json{R"({"a": [1, "x"]})"}, Json{R"({"b" : 1})"}, id, Cents{-1234567});
  EXPECT_EQ(r.get<Numeric>(0, 0), big);
  EXPECT_EQ(r.get<Json>(0, 1).text, R"({"a": [1, "x"]})");
  EXPECT_EQ(r.get<Json>(0, 2).text, R"({"b" : 1})");  // json keeps its text
  EXPECT_EQ(r.get<Uuid>(0, 3), id);
  EXPECT_EQ(r.get<Uuid>(0, 3).to_string(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(r.get<Cents>(0, 4), Cents{-1234567});
  EXPECT_EQ(r.get<Cents>(0, 5), Cents{-2469134});
  EXPECT_THROW(conn.exec("SELECT $1::jsonb", Json{"{nope"}), DatabaseError);
  EXPECT_THROW(Uuid::parse("a0eebc99-9c0b"), TypeMismatch);
}

TEST_F(TypesTest, ByteaCarriesEveryByteValueBothFormats) {
  std::vector<std::byte> all(512);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::byte>(i % 256);
  for (const char* output : {"hex", "escape"}) {
    conn.exec(std::string("SET bytea_output = ") + output);
    auto r = conn.exec("SELECT $1, length($1), $2", all, std::span<const std::byte>(all).subspan(250, 10));
    EXPECT_EQ(r.get<std::vector<std::byte>>(0, 0), all) << output;
    EXPECT_EQ(r.get<int>(0, 1), 512);
    EXPECT_EQ(r.get<std::vector<std::byte>>(0, 2),
              std::vector<std::byte>(all.begin() + 250, all.begin() + 260));
  }
  auto empty = conn.exec("SELECT $1", std::vector<std::byte>{});
  EXPECT_TRUE(empty.get<std::vector<std::byte>>(0, 0).empty());
  EXPECT_FALSE(empty.is_null(0, 0));
}

sys_time<microseconds> utc(int y, unsigned m, unsigned d, int h, int min, int s, int us = 0) {
  return sys_days{year{y} / month{m} / day{d}} + hours{h} + minutes{min} + seconds{s} + microseconds{us};
}

// The instant as the test writes it, in UTC (independent of the library's formatting).
std::string utc_text(sys_time<microseconds> t) {
  auto midnight = floor<days>(t);
  year_month_day d{midnight};
  hh_mm_ss<microseconds> tod{t - midnight};
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00", static_cast<int>(d.year()),
                     static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()), tod.hours().count(),
                     tod.minutes().count(), tod.seconds().count(), tod.subseconds().count());
}

TEST_F(TypesTest, TimestampsAcrossDstChangesInEveryTimeZone) {
  // Instants around DST changes: New York spring forward (07:00 UTC) and fall back
  // (06:00 UTC, the repeated hour), Berlin (01:00 UTC), Lord Howe's half-hour shift,
  // and a pre-1900 instant (local mean time offsets with seconds).
  std::vector<sys_time<microseconds>> instants = {
      utc(2024, 3, 10, 6, 59, 59, 999999), utc(2024, 3, 10, 7, 0, 0), utc(2024, 11, 3, 5, 30, 0),
      utc(2024, 11, 3, 6, 30, 0, 1), utc(2024, 3, 31, 0, 59, 59), utc(2024, 3, 31, 1, 0, 0, 500000),
      utc(2024, 4, 6, 15, 0, 0), utc(1890, 1, 1, 12, 0, 0, 123456), utc(1970, 1, 1, 0, 0, 0),
      utc(2262, 1, 1, 0, 0, 0)};
  for (const char* zone : {"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata",
                           "Australia/Lord_Howe", "America/St_Johns"}) {
    conn.exec(std::string("SET TimeZone = '") + zone + "'");
    for (auto instant : instants) {
      system_clock::time_point tp{duration_cast<system_clock::duration>(instant.time_since_epoch())};
      // $2 is the same instant written by the test in UTC: the server agrees it is equal.
      auto r = conn.exec("SELECT $1, $1 = $2::timestamptz, $1::text",
                         tp, utc_text(instant));
      EXPECT_EQ(r.get<system_clock::time_point>(0, 0), tp) << zone << " " << r.get<std::string>(0, 2);
      EXPECT_TRUE(r.get<bool>(0, 1)) << zone << " " << r.get<std::string>(0, 2);
    }
  }
  // Local times the server parses in its zone: 01:30 on New York's fall-back day is read
  // as standard time by PostgreSQL (EST, 06:30 UTC); 10:00 in Kolkata is 04:30 UTC.
  conn.exec("SET TimeZone = 'America/New_York'");
  auto r = conn.exec("SELECT '2024-11-03 01:30:00'::timestamptz, "
                     "'2024-06-01 10:00:00 Asia/Kolkata'::timestamptz, "
                     "'2024-06-01 10:00:00'::timestamp, 'infinity'::timestamptz, '-infinity'::timestamptz");
  auto as_sys = [](system_clock::time_point t) { return time_point_cast<microseconds>(t); };
  EXPECT_EQ(as_sys(r.get<system_clock::time_point>(0, 0)), utc(2024, 11, 3, 6, 30, 0));
  EXPECT_EQ(as_sys(r.get<system_clock::time_point>(0, 1)), utc(2024, 6, 1, 4, 30, 0));
  EXPECT_EQ(as_sys(r.get<system_clock::time_point>(0, 2)), utc(2024, 6, 1, 10, 0, 0));  // timestamp: UTC
  EXPECT_EQ(r.get<system_clock::time_point>(0, 3), system_clock::time_point::max());
  EXPECT_EQ(r.get<system_clock::time_point>(0, 4), system_clock::time_point::min());
  auto inf = conn.exec("SELECT $1 = 'infinity'::timestamptz", system_clock::time_point::max());
  EXPECT_TRUE(inf.get<bool>(0, 0));
  EXPECT_THROW(conn.exec("SELECT '1000-01-01 00:00:00+00'::timestamptz").get<system_clock::time_point>(0, 0),
               TypeMismatch);  // before what system_clock holds
  conn.exec("SET DateStyle = 'SQL, DMY'");
  try {
    conn.exec("SELECT now() AS t").get<system_clock::time_point>(0, 0);
    ADD_FAILURE() << "DateStyle SQL read";
  } catch (const TypeMismatch& e) {
    EXPECT_THAT(e.what(), HasSubstr("DateStyle"));
  }
}

TEST_F(TypesTest, IntervalsAndDates) {
  for (microseconds d : {microseconds{0}, microseconds{1}, microseconds{-1}, microseconds{3LL * 86400000000 + 5},
                         -(hours{1} + minutes{2} + seconds{3} + microseconds{4}),
                         duration_cast<microseconds>(hours{24 * 365 * 100})}) {
    auto r = conn.exec("SELECT $1, $1::text", d);
    EXPECT_EQ(r.get<microseconds>(0, 0), d) << r.get<std::string>(0, 1);
  }
  auto r = conn.exec("SELECT '1 day 02:00:00'::interval, '-1 days +02:03:04.5'::interval, "
                     "'1 mon'::interval AS month, '0 years 0 mons 2 days'::interval");
  EXPECT_EQ(r.get<microseconds>(0, 0), hours{26});
  EXPECT_EQ(r.get<microseconds>(0, 1), -hours{24} + hours{2} + minutes{3} + seconds{4} + milliseconds{500});
  EXPECT_EQ(r.get<microseconds>(0, 3), hours{48});
  try {
    r.get<microseconds>(0, "month");
    ADD_FAILURE() << "a month read as microseconds";
  } catch (const TypeMismatch& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("month"), HasSubstr("interval"), HasSubstr("std::chrono::microseconds")));
  }

  for (year_month_day d : {2024y / February / 29, 1y / January / 1, 0y / March / 15, -43y / March / 15,
                           9999y / December / 31}) {
    auto dr = conn.exec("SELECT $1, $1::text", d);
    EXPECT_EQ(dr.get<year_month_day>(0, 0), d) << dr.get<std::string>(0, 1);
  }
  auto bc = conn.exec("SELECT '0044-03-15 BC'::date, date '2000-01-01' + 1");
  EXPECT_EQ(bc.get<year_month_day>(0, 0), -43y / March / 15);
  EXPECT_EQ(bc.get<year_month_day>(0, 1), 2000y / January / 2);
}

// What the server can write but the C++ types cannot hold is a TypeMismatch, never a
// wrapped value: 67536 AD is 2000 AD plus 65536 years (std::chrono::year is 16 bits),
// and an interval's 2^31 - 1 days or its days plus its time overflow 64-bit microseconds.
TEST_F(TypesTest, ServerValuesBeyondTheCppTypesAreMismatches) {
  auto r = conn.exec(
      "SELECT '67536-01-01'::date AS d, '67536-01-01 00:00:00+00'::timestamptz AS t, "
      "'2147483647 days'::interval AS many_days, "
      "'2147483647 days 2562047788:00:54.775807'::interval AS days_and_time, "
      "'2562047788:00:54.775807'::interval AS longest, "
      "'-2562047788:00:54.775807'::interval - '1 microsecond'::interval AS most_negative");
  for (const char* column : {"d", "t", "many_days", "days_and_time"}) {
    try {
      if (r.column_type(r.column_index(column)) == type_oids::date)
        r.get<year_month_day>(0, column);
      else if (r.column_type(r.column_index(column)) == type_oids::timestamptz)
        r.get<system_clock::time_point>(0, column);
      else
        r.get<microseconds>(0, column);
      ADD_FAILURE() << column << " " << r.get<std::string>(0, column) << " was read";
    } catch (const TypeMismatch& e) {
      EXPECT_THAT(e.what(), AllOf(HasSubstr(fmt::format("\"{}\"", column)), HasSubstr("std::chrono")));
    }
  }
  EXPECT_EQ(r.get<microseconds>(0, "longest"), microseconds::max());
  EXPECT_EQ(r.get<microseconds>(0, "most_negative"), microseconds::min());
}

TEST_F(TypesTest, OneDimensionalArrays) {
  std::vector<int> ints{1, -2, 2147483647};
  std::vector<std::int64_t> bigs{std::numeric_limits<std::int64_t>::min(), 0};
  std::vector<std::int16_t> smalls{-32768};
  std::vector<std::string> texts{"plain", "with space", "comma,brace}{", "quote\"back\\slash", "", "NULL", "é"};
  std::vector<Uuid> ids{Uuid::parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), Uuid{}};
  std::vector<std::optional<int>> holes{1, std::nullopt, 3};
  auto r = conn.exec("SELECT $1, $2, $3, $4::text[], $5, $6, cardinality($4::text[]), $4::text[] = $7::text[], "
                     "$8::int4[]",
                     ints, bigs, smalls, texts, ids, holes, "{plain,\"with space\",\"comma,brace}{\","
                     "\"quote\\\"back\\\\slash\",\"\",\"NULL\",é}", std::vector<int>{});
  EXPECT_EQ(r.column_type(0), type_oids::int4_array);
  EXPECT_EQ(r.get<std::vector<int>>(0, 0), ints);
  EXPECT_EQ(r.get<std::vector<std::int64_t>>(0, 1), bigs);
  EXPECT_EQ(r.get<std::vector<std::int16_t>>(0, 2), smalls);
  EXPECT_EQ(r.get<std::vector<std::string>>(0, 3), texts);
  EXPECT_EQ(r.get<std::vector<Uuid>>(0, 4), ids);
  EXPECT_EQ(r.column_type(4), type_oids::uuid_array);
  EXPECT_EQ(r.get<std::vector<std::optional<int>>>(0, 5), holes);
  EXPECT_EQ(r.get<int>(0, 6), 7);
  EXPECT_TRUE(r.get<bool>(0, 7));
  EXPECT_TRUE(r.get<std::vector<int>>(0, 8).empty());
  EXPECT_THROW(r.get<std::vector<int>>(0, 5), TypeMismatch);  // a NULL element

  auto more = conn.exec("SELECT ARRAY[[1,2],[3,4]] AS grid, '[0:1]={5,6}'::int[] AS bounded");
  try {
    more.get<std::vector<int>>(0, "grid");
    ADD_FAILURE() << "a 2-D array read";
  } catch (const TypeMismatch& e) {
    EXPECT_THAT(e.what(), HasSubstr("one-dimensional"));
  }
  EXPECT_EQ(more.get<std::vector<int>>(0, "bounded"), (std::vector<int>{5, 6}));
}

TEST_F(TypesTest, NullsBothWaysAndMismatchesNameColumnServerTypeAndCppType) {
  auto r = conn.exec("SELECT $1::timestamptz AS t, $2::interval AS i, $3::date AS d, $4::uuid AS u, "
                     "$5::int4[] AS a, $6::bytea AS b, $7::jsonb AS j",
                     std::optional<system_clock::time_point>{}, std::optional<microseconds>{},
                     std::optional<year_month_day>{}, std::optional<Uuid>{},
                     std::optional<std::vector<int>>{}, std::optional<std::vector<std::byte>>{},
                     std::optional<Json>{});
  for (std::size_t c = 0; c < r.columns(); ++c) EXPECT_TRUE(r.is_null(0, c)) << c;
  EXPECT_EQ(r.get<std::optional<system_clock::time_point>>(0, "t"), std::nullopt);
  EXPECT_EQ(r.get<std::optional<std::vector<int>>>(0, "a"), std::nullopt);
  EXPECT_THROW(r.get<Uuid>(0, "u"), NullValue);

  auto m = conn.exec("SELECT now() AS created, 'x'::text AS label, 300 AS big");
  try {
    m.get<int>(0, "created");
    ADD_FAILURE();
  } catch (const TypeMismatch& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("\"created\""), HasSubstr("timestamptz"), HasSubstr("read as int:")));
  }
  try {
    m.get<system_clock::time_point>(0, "label");
    ADD_FAILURE();
  } catch (const TypeMismatch& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("\"label\""), HasSubstr("(text)"),
                                HasSubstr("std::chrono::system_clock::time_point")));
  }
  try {
    m.get<std::int8_t>(0, "big");
    ADD_FAILURE();
  } catch (const TypeMismatch& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("\"big\""), HasSubstr("int4"), HasSubstr("read as signed char:")));
  }
  EXPECT_THROW(m.get<std::vector<std::byte>>(0, "label"), TypeMismatch);
  EXPECT_THROW(m.get<year_month_day>(0, "created"), TypeMismatch);
}

}  // namespace
}  // namespace usher::test
