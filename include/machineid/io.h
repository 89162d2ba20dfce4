// Reading and writing files at the edges of the core.
#pragma once

#include <cstddef>
#include <string>

#include "machineid/result.h"

namespace machineid {

// Reads a whole regular file of at most `max_bytes`. Errors (Errc::io, or
// Errc::limit when larger) name the path and the reason.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes);

// Replaces `path` atomically with `content`: writes a temporary file in the
// same directory, fsyncs it, renames it over `path` and fsyncs the directory.
Status write_file_atomic(const std::string& path, const std::string& content, unsigned mode = 0644);

}  // namespace machineid
