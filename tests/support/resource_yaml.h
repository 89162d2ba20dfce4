// Role and lock documents as `tctl get` prints them, for the policy tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "machineid/resources.h"

namespace machineid::testing {

// Parses YAML that must load whole.
inline Policy parse_ok(const std::string& yaml, const std::string& source = "roles.d/test.yaml",
                       ResourceFile kind = ResourceFile::roles) {
  Policy policy;
  Status status = parse_resources(yaml, source, policy, kind);
  EXPECT_TRUE(status.ok()) << status.error().message;
  return policy;
}

// The first error of YAML that must not load whole.
inline std::string parse_error(const std::string& yaml, const std::string& source = "roles.d/ci.yaml",
                               ResourceFile kind = ResourceFile::roles) {
  Policy policy;
  Status status = parse_resources(yaml, source, policy, kind);
  EXPECT_FALSE(status.ok());
  return status.ok() ? "" : status.error().message;
}

// A v7 role named "web" with logins [deploy] and the given allow.node_labels block.
inline std::string role_with_labels(const std::string& node_labels) {
  return "kind: role\n"
         "metadata:\n"
         "  name: web\n"
         "  revision: 2b1c9f0e-33a4-4a7e-9d6c-0b8e5d1f7a21\n"
         "spec:\n"
         "  allow:\n"
         "    app_labels:\n"
         "      '*': '*'\n"
         "    logins:\n"
         "    - deploy\n"
         "    node_labels:\n" +
         node_labels +
         "  options:\n"
         "    forward_agent: false\n"
         "version: v7\n";
}

// A lock as `tctl get locks` prints it, with the given spec.target block.
inline std::string lock_yaml(const std::string& target, const std::string& expires = "") {
  return "kind: lock\n"
         "metadata:\n"
         "  name: 6f0c1d8e-4b2a-4c55-8a0e-2d9b7c3e1f40\n"
         "  revision: 9a7d3c21-0e4f-4b6a-8c15-7e2f9d0b3a64\n"
         "spec:\n"
         "  created_at: \"2025-06-01T10:00:00Z\"\n"
         "  created_by: alice\n" +
         (expires.empty() ? "" : "  expires: \"" + expires + "\"\n") +
         "  message: runner compromised\n"
         "  target:\n" +
         target + "version: v2\n";
}

}  // namespace machineid::testing
