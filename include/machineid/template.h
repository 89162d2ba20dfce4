// Trait templates, "prefix{{expression}}suffix", applied as Teleport's
// ApplyValueTraits applies them to a role's logins, labels and host groups.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "machineid/identity.h"
#include "machineid/result.h"

namespace machineid {

// The trait names Teleport lets a template read in the "internal" namespace;
// any other internal.X makes the template expand to nothing.
inline constexpr std::string_view kInternalTraits[] = {
    "logins",         "windows_logins",   "kubernetes_groups",    "kubernetes_users",
    "db_names",       "db_users",         "db_roles",             "aws_role_arns",
    "azure_identities", "gcp_service_accounts", "jwt",             "github_orgs",
};

// The values of a template: a literal gives itself; an expression gives one
// value per value of its result that is not empty, with the prefix (less
// leading blanks) and suffix (less trailing blanks) around it. A template
// that is malformed, names a missing or unsupported trait, or whose function
// fails, gives nothing — skipped, as Teleport skips it.
std::vector<std::string> expand_values(std::string_view tmpl, const Traits& traits);
// expand_values for logins: values that are not valid Unix logins (as
// Teleport's IsValidUnixUser: 1-32 bytes, no leading '-', no ':', '/',
// blank or control character) are dropped.
std::vector<std::string> expand_template(std::string_view tmpl, const Traits& traits);
// Checks a template's syntax without expanding it; the error says what is
// wrong. Loading a role only reports such errors, as Teleport only warns.
Status validate_template(std::string_view tmpl);
// Whether `text` holds template braces.
bool is_template(std::string_view text);
bool valid_login(std::string_view login);

}  // namespace machineid
