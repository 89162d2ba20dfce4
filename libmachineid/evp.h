// OpenSSL digests fetched once. OpenSSL 3 looks an algorithm up in its
// provider tables on every use of EVP_sha256() and friends; a pre-fetched
// EVP_MD skips that, which is most of the cost of hashing a key blob.
#pragma once

#include <openssl/evp.h>

namespace machineid {

const EVP_MD* md_sha1();
const EVP_MD* md_sha256();
const EVP_MD* md_sha384();
const EVP_MD* md_sha512();

}  // namespace machineid
