#include "machineid/sudoers.h"

#include "machineid/encoding.h"

namespace machineid {

std::string sudoers_file_name(std::string_view login) {
  std::string name = "machineid-" + std::string(login);
  for (char& c : name)
    if (c == '.' || c == '~' || c == '/') c = '_';
  return name;
}

Result<std::string> sudoers_content(std::string_view login, const std::vector<std::string>& entries) {
  std::string out;
  for (const std::string& entry : entries) {
    auto refuse = [&](const char* why) {
      return make_error(Errc::malformed, "host_sudoers entry '" + escape_untrusted(entry) + "' " + why);
    };
    if (entry.find_first_not_of(" \t") == std::string::npos) return refuse("is empty");
    for (unsigned char c : entry)
      if (c < 0x20 || c == 0x7f) return refuse("holds a control character");
    if (entry.back() == '\\') return refuse("ends in a backslash, which would continue it on the next line");
    out += std::string(login) + " " + entry + "\n";
    if (out.size() > kMaxSudoersBytes) return make_error(Errc::limit, "host_sudoers entries exceed 64 KiB");
  }
  return out;
}

}  // namespace machineid
