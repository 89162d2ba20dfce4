// pam_driver: a small libpam application for the PAM tests. pam_wrapper
// must be preloaded before a process starts, so the tests run this program
// with LD_PRELOAD=libpam_wrapper.so, PAM_WRAPPER=1 and
// PAM_WRAPPER_SERVICE_DIR pointing at their own service files.
//
//   pam_driver [--cycles N] [--rhost ADDR] [--keep-loaded MODULE] SERVICE USER STEP...
//
// --keep-loaded holds MODULE open for the whole run. libpam loads modules
// afresh for every handle; under valgrind that means reading the module's
// debugging information again each cycle, and a leak report that can no
// longer name its functions.
//
// Each cycle starts a handle for SERVICE and USER, sets PAM_RHOST, runs the
// steps and ends the handle. Steps:
//   account open close authenticate setcred chauthtok
//                  the libpam call, through the service's stack
//   NAME=VALUE     pam_putenv, as sshd puts SSH_AUTH_INFO_0 before account
//                  and again before session
//   env            the PAM environment, one "env NAME=VALUE" line each
//                  (a newline in VALUE as \n)
//   new            ends the handle and starts a fresh one without PAM_RHOST
// The last cycle's results are printed, "STEP CODE" per step (CODE as in
// <security/_pam_types.h>). Exit status 1 when a cycle's results differ
// from the first's or the process holds more descriptors after the last
// cycle than after the first; 2 for a usage error.
#include <dirent.h>
#include <dlfcn.h>
#include <security/pam_appl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Setup {
  int cycles = 1;
  const char* rhost = nullptr;
  const char* service = nullptr;
  const char* user = nullptr;
  std::vector<std::string> steps;
};

// Modules have nothing to ask in these tests.
int no_conversation(int, const pam_message**, pam_response**, void*) { return PAM_CONV_ERR; }

int open_descriptors() {
  int count = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++count;
    closedir(d);
  }
  return count;
}

int usage(const char* why) {
  std::fprintf(stderr, "pam_driver: %s\n", why);
  return 2;
}

pam_handle_t* start(const Setup& s) {
  static const pam_conv conversation{no_conversation, nullptr};
  pam_handle_t* pamh = nullptr;
  int rc = pam_start(s.service, s.user, &conversation, &pamh);
  if (rc == PAM_SUCCESS) return pamh;
  std::fprintf(stderr, "pam_driver: pam_start: %d\n", rc);
  return nullptr;
}

// One cycle's printed results, or "" with a message on stderr when a
// handle could not be started.
std::string cycle(const Setup& s) {
  pam_handle_t* pamh = start(s);
  if (pamh == nullptr) return "";
  if (s.rhost != nullptr) pam_set_item(pamh, PAM_RHOST, s.rhost);
  std::string out;
  int last = PAM_SUCCESS;
  for (const std::string& step : s.steps) {
    if (step == "env") {
      char** env = pam_getenvlist(pamh);
      for (char** e = env; e != nullptr && *e != nullptr; ++e) {
        std::string entry = *e;
        // One line per variable: SSH_AUTH_INFO_0 has several.
        for (auto at = entry.find('\n'); at != std::string::npos; at = entry.find('\n', at))
          entry.replace(at, 1, "\\n");
        out += "env " + entry + "\n";
        std::free(*e);
      }
      std::free(env);
      continue;
    }
    if (step.find('=') != std::string::npos) {
      pam_putenv(pamh, step.c_str());
      continue;
    }
    if (step == "new") {
      pam_end(pamh, last);
      if ((pamh = start(s)) == nullptr) return "";
      continue;
    }
    if (step == "account")
      last = pam_acct_mgmt(pamh, 0);
    else if (step == "open")
      last = pam_open_session(pamh, 0);
    else if (step == "close")
      last = pam_close_session(pamh, 0);
    else if (step == "authenticate")
      last = pam_authenticate(pamh, 0);
    else if (step == "setcred")
      last = pam_setcred(pamh, PAM_ESTABLISH_CRED);
    else if (step == "chauthtok")
      last = pam_chauthtok(pamh, 0);
    out += step + " " + std::to_string(last) + "\n";
  }
  pam_end(pamh, last);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Setup s;
  int i = 1;
  for (; i + 1 < argc && std::strncmp(argv[i], "--", 2) == 0; i += 2) {
    std::string flag = argv[i];
    if (flag == "--cycles") {
      s.cycles = std::atoi(argv[i + 1]);
    } else if (flag == "--rhost") {
      s.rhost = argv[i + 1];
    } else if (flag == "--keep-loaded") {
      if (dlopen(argv[i + 1], RTLD_NOW | RTLD_LOCAL) == nullptr) return usage(dlerror());
    } else {
      return usage(("unknown flag " + flag).c_str());
    }
  }
  if (argc - i < 3 || s.cycles < 1) return usage("usage: pam_driver [flags] SERVICE USER STEP...");
  s.service = argv[i];
  s.user = argv[i + 1];
  s.steps.assign(argv + i + 2, argv + argc);

  for (const std::string& step : s.steps) {
    bool known = step.find('=') != std::string::npos;
    for (const char* name :
         {"account", "open", "close", "authenticate", "setcred", "chauthtok", "env", "new"})
      known |= step == name;
    if (!known) return usage(("unknown step " + step).c_str());
  }

  std::string first = cycle(s);
  if (first.empty()) return 1;
  // After the first cycle: libpam and the logging it sets up may keep a
  // descriptor for the life of the process, the module may not.
  int descriptors = open_descriptors();
  std::string last = first;
  for (int n = 2; n <= s.cycles; ++n) {
    last = cycle(s);
    if (last != first) {
      std::fprintf(stderr, "pam_driver: cycle %d differs from the first:\n%s---\n%s", n,
                   first.c_str(), last.c_str());
      return 1;
    }
  }
  std::fputs(last.c_str(), stdout);
  if (int now = open_descriptors(); now > descriptors) {
    std::fprintf(stderr, "pam_driver: %d descriptors leaked over %d cycles\n", now - descriptors,
                 s.cycles - 1);
    return 1;
  }
  return 0;
}
