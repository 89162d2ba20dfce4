#include "home.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace machineid::pam {
namespace {

// A skeleton is a few dotfiles; deeper than this is a loop or a mistake.
constexpr int kMaxSkelDepth = 16;
// getpwnam_r's buffer grows on ERANGE up to this.
constexpr std::size_t kMaxPasswdBuffer = 1 << 20;

// Every directory and file below is reached through a descriptor opened
// with O_NOFOLLOW relative to its parent's, so a symbolic link is never
// followed and nothing outside the new home is ever changed.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

Error fail(const std::string& path, const char* step) {
  return make_error(Errc::io, path + ": " + step + ": " + std::strerror(errno));
}

struct Account {
  uid_t uid;
  gid_t gid;
  std::string home;
};

Result<Account> lookup(const std::string& login) {
  std::vector<char> buffer(4096);
  for (;;) {
    passwd entry{};
    passwd* found = nullptr;
    int rc = getpwnam_r(login.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < kMaxPasswdBuffer) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (rc != 0) return make_error(Errc::io, login + ": getpwnam_r: " + std::strerror(rc));
    if (found == nullptr) return make_error(Errc::io, login + ": no passwd entry");
    return Account{entry.pw_uid, entry.pw_gid, entry.pw_dir};
  }
}

Status copy_file(int src_dir, int dst_dir, const char* name, const Account& owner,
                 const std::string& path) {
  // O_NONBLOCK: should the entry have become a FIFO, opening it must not hang.
  Fd in(openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!in.ok() || fstat(in.get(), &st) != 0) return fail(path, "open skeleton file");
  if (!S_ISREG(st.st_mode)) return {};  // replaced since it was listed
  Fd out(openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.ok()) return fail(path, "create");
  char buffer[16384];
  for (;;) {
    ssize_t n = read(in.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(path, "read skeleton file");
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out.get(), buffer + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(path, "write");
      done += w;
    }
  }
  // Permission bits only: a skeleton file must not become set-id the user's.
  if (fchown(out.get(), owner.uid, owner.gid) != 0 || fchmod(out.get(), st.st_mode & 0777) != 0)
    return fail(path, "set owner and mode");
  return {};
}

Status copy_link(int src_dir, int dst_dir, const char* name, const Account& owner,
                 const std::string& path) {
  std::vector<char> target(PATH_MAX + 1);
  ssize_t n = readlinkat(src_dir, name, target.data(), target.size());
  if (n < 0 || static_cast<std::size_t>(n) >= target.size())
    return fail(path, "read skeleton link");
  target[static_cast<std::size_t>(n)] = '\0';
  if (symlinkat(target.data(), dst_dir, name) != 0) return fail(path, "create link");
  if (fchownat(dst_dir, name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(path, "set link owner");
  return {};
}

Status copy_tree(int src_dir, int dst_dir, const Account& owner, const std::string& path,
                 int depth) {
  if (depth > kMaxSkelDepth)
    return make_error(Errc::limit,
                      path + ": skeleton deeper than " + std::to_string(kMaxSkelDepth));
  // fdopendir takes its descriptor; ours stays with the caller.
  std::unique_ptr<DIR, DirCloser> listing(fdopendir(openat(src_dir, ".", kDirFlags)));
  if (!listing) return fail(path, "list skeleton directory");
  while (dirent* entry = readdir(listing.get())) {
    const char* name = entry->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
    std::string child = path + "/" + name;
    struct stat st {};
    if (fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      return fail(child, "stat skeleton entry");
    if (S_ISREG(st.st_mode)) {
      MID_CHECK(copy_file(src_dir, dst_dir, name, owner, child));
    } else if (S_ISLNK(st.st_mode)) {
      MID_CHECK(copy_link(src_dir, dst_dir, name, owner, child));
    } else if (S_ISDIR(st.st_mode)) {
      if (mkdirat(dst_dir, name, 0700) != 0) return fail(child, "create directory");
      Fd src(openat(src_dir, name, kDirFlags));
      Fd dst(openat(dst_dir, name, kDirFlags));
      if (!src.ok() || !dst.ok()) return fail(child, "open directory");
      MID_CHECK(copy_tree(src.get(), dst.get(), owner, child, depth + 1));
      if (fchown(dst.get(), owner.uid, owner.gid) != 0 || fchmod(dst.get(), st.st_mode & 0777) != 0)
        return fail(child, "set owner and mode");
    }
    // Devices, FIFOs and sockets have no place in a home directory.
  }
  return {};
}

}  // namespace

Status create_home(const std::string& login, const std::string& skel) {
  MID_TRY(owner, lookup(login));
  std::string home = owner.home;
  while (home.size() > 1 && home.ends_with('/')) home.pop_back();
  if (!home.starts_with('/') || home == "/")
    return make_error(Errc::config,
                      login + ": home directory " + home + " is not an absolute path below /");
  auto slash = home.rfind('/');
  std::string parent_path = slash == 0 ? "/" : home.substr(0, slash);
  std::string name = home.substr(slash + 1);

  Fd parent(open(parent_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent.ok()) return fail(parent_path, "open parent of home directory");
  // mkdir is the test for existence: whatever is there already stays as it is.
  if (mkdirat(parent.get(), name.c_str(), 0700) != 0)
    return errno == EEXIST ? Status{} : Status{fail(home, "create home directory")};
  // The home stays root's (0700) while the skeleton is copied, so nobody
  // can swap anything inside it until it is handed over at the end.
  Fd dir(openat(parent.get(), name.c_str(), kDirFlags));
  struct stat st {};
  if (!dir.ok() || fstat(dir.get(), &st) != 0) return fail(home, "open home directory");
  // Only we could have made it ours: under a parent others may write to, a
  // directory of theirs may have taken its place, and must not be handed on.
  if (st.st_uid != geteuid())
    return make_error(Errc::io, home + ": replaced while it was being made");
  Status copied;
  Fd skeleton(open(skel.c_str(), kDirFlags));
  if (skeleton.ok())
    copied = copy_tree(skeleton.get(), dir.get(), owner, home, 0);
  else if (errno != ENOENT)
    copied = fail(skel, "open skeleton directory");
  if (fchown(dir.get(), owner.uid, owner.gid) != 0 || fchmod(dir.get(), 0700) != 0)
    return fail(home, "hand the home directory to its user");
  return copied;
}

}  // namespace machineid::pam
