// machineidctl: the administrator's command line.
#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr const char* kUsage =
    "usage: machineidctl verify --config FILE --cert FILE --login NAME [--from IP] [--at UNIX_SECONDS] [--json]\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::fprintf(stderr, "machineidctl: unknown command '%s'\n%s", argv[1], kUsage);
  return 2;
}
