// RFC 3339 timestamps.
#include "machineid/rfc3339.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

namespace machineid {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr std::int64_t kFirstSecond = -62167219200;  // 0000-01-01T00:00:00Z
constexpr std::int64_t kLastSecond = 253402300799;   // 9999-12-31T23:59:59Z

// `seconds` (within kFirstSecond..kLastSecond) as year, month, day, hour,
// minute and second through `format`, which takes six ints.
std::string format_fields(std::int64_t seconds, const char* format) {
  std::int64_t days = seconds / 86400, rest = seconds % 86400;
  if (rest < 0) {
    rest += 86400;
    --days;
  }
  std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{days}}};
  char buf[32];
  std::snprintf(buf, sizeof buf, format, static_cast<int>(date.year()), static_cast<int>(unsigned{date.month()}),
                static_cast<int>(unsigned{date.day()}), static_cast<int>(rest / 3600), static_cast<int>(rest / 60 % 60),
                static_cast<int>(rest % 60));
  return buf;
}

}  // namespace

Result<std::int64_t> parse_rfc3339(std::string_view s) {
  std::size_t pos = 0;
  auto number = [&](std::size_t count, int& out) {
    out = 0;
    for (std::size_t i = 0; i < count; ++i, ++pos) {
      if (pos >= s.size() || !is_digit(s[pos])) return false;
      out = out * 10 + (s[pos] - '0');
    }
    return true;
  };
  auto literal = [&](std::string_view any_of) {
    if (pos >= s.size() || any_of.find(s[pos]) == std::string_view::npos) return false;
    ++pos;
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  bool ok = number(4, year) && literal("-") && number(2, month) && literal("-") && number(2, day) &&
            literal("Tt") && number(2, hour) && literal(":") && number(2, minute) && literal(":") &&
            number(2, second);
  bool fraction = false;
  if (ok && literal(".")) {
    std::size_t start = pos;
    for (; pos < s.size() && is_digit(s[pos]); ++pos) fraction = fraction || s[pos] != '0';
    ok = pos > start;
  }
  int offset = 0;
  if (ok && !literal("Zz")) {
    int sign = pos < s.size() && s[pos] == '-' ? -1 : 1;
    int offset_hours = 0, offset_minutes = 0;
    ok = literal("+-") && number(2, offset_hours) && literal(":") && number(2, offset_minutes) &&
         offset_hours < 24 && offset_minutes < 60;
    offset = sign * (offset_hours * 3600 + offset_minutes * 60);
  }
  std::chrono::year_month_day date{std::chrono::year{year},
                                   std::chrono::month{static_cast<unsigned>(month)},
                                   std::chrono::day{static_cast<unsigned>(day)}};
  if (!ok || pos != s.size() || !date.ok() || hour > 23 || minute > 59 || second > 59)
    return make_error(Errc::config, "'" + std::string(s) + "'" + " is not an RFC 3339 time (like 2026-01-02T15:04:05Z)");
  std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  return days * 86400 + hour * 3600 + minute * 60 + second - offset + (fraction ? 1 : 0);
}

std::string format_rfc3339(std::int64_t seconds) {
  if (seconds < kFirstSecond || seconds > kLastSecond) return std::to_string(seconds);
  return format_fields(seconds, "%04d-%02d-%02dT%02d:%02d:%02dZ");
}

std::string format_ssh_time(std::int64_t seconds) {
  return format_fields(std::clamp(seconds, kFirstSecond, kLastSecond), "%04d%02d%02d%02d%02d%02dZ");
}

}  // namespace machineid
