/**
 * The admin API's tokens with roles (`admin.tokens`) and its TLS (`admin.tls`). `admin.token`,
 * the one token of before, stays: it is a token of the role "admin".
 */
import { ADMIN_TOKEN_MIN, oneOf, pemPath } from './checks.js';
import { group, leaf, list, required } from './kit.js';
import { show } from './problems.js';
import { ADMIN_ROLES } from './types.js';

const roleToken = leaf<string>((v) => {
  if (typeof v !== 'string' || v.length < ADMIN_TOKEN_MIN) {
    throw new Error(`must be a string of at least ${ADMIN_TOKEN_MIN} characters, e.g. from \`openssl rand -hex 32\` (got ${typeof v === 'string' ? `${v.length} characters` : show(v)})`);
  }
}, { type: 'string', minLength: ADMIN_TOKEN_MIN });

export const ADMIN_TOKENS = list(
  group(
    {
      token: required(roleToken, 'The bearer token.'),
      role: required(oneOf(ADMIN_ROLES), '"read": GET only; "operate": also kill connections, reload and drain; "admin": also change tiers and customers.'),
    },
    (v) => `must be an object like {"token": "...", "role": "read"} (got ${show(v)})`,
  ),
  (v) => {
    throw new Error(`must be a list of tokens like [{"token": "...", "role": "read"}] (got ${show(v)})`);
  },
);

export const ADMIN_TLS = group(
  {
    cert: required(pemPath('certificate chain', 'the certificate file (PEM, the chain after the leaf)'), 'The certificate chain file (PEM), relative to the config file.'),
    key: required(pemPath('private key', 'the private key file (PEM, unencrypted)'), 'The private key file (PEM, unencrypted).'),
  },
  (v) => `must be an object like {"cert": "certs/admin.pem", "key": "certs/admin-key.pem"} (got ${show(v)})`,
);
