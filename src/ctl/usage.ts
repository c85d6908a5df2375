/** The ctl's usage text and its error (the exit status it ends with). */
import { ProxyError } from '../errors.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9900';

export const USAGE = `Usage: shaper-proxy ctl COMMAND [options]

Commands:
  tiers                         list the tiers
  tier NAME                     show one tier
  tier NAME --file FILE         create or replace a tier; FILE holds a tier object as written
                                under "tiers" in the config ("-" reads stdin)
  tier NAME --delete            delete a tier (refused while customers, defaultTier or connections use it)
  customers                     list the customers
  customer ID                   show one customer
  customer ID --tier TIER       move a customer to another tier (its match stays)
  customer ID [--tier TIER] --source CIDR... [--app NAME...] [--port N...]
                                create a customer or replace its match
  customer ID --delete          delete a customer
  connections                   list the proxied connections
  fleet                         the fleet (config "cluster"): Redis, members, this instance's shares
  usage [ID]                    bytes per customer in the accounting period, quota left, exceeded
  reload                        reload the config file now; prints its problems and exits 2 if it does not
                                load (the old config stays in force)
  kill ID                       close one connection (its id in "connections")
  drain                         stop accepting (app ports close, /ready answers 503); open connections go on
  undrain                       accept again
  upgrade                       start the program on disk, hand it the listening sockets, drain this process
                                (no connection refused); prints why and exits 2 if the new one cannot start
                                (the old one keeps serving)

Options:
      --admin URL   the proxy's admin API (default $SHAPER_ADMIN_URL, else ${DEFAULT_ADMIN_URL})
      --token TOKEN the admin API's token, admin.token or one of admin.tokens (default $SHAPER_ADMIN_TOKEN)
      --json        print the API's JSON instead of a table
  -h, --help        this text

Changes take effect on live connections at once and are kept in the proxy's state file.
An https:// admin URL with a certificate of a private CA: NODE_EXTRA_CA_CERTS=ca.pem shaper-proxy ctl ...
`;

/** What stops a ctl command; `exitStatus` is its exit status (2: bad arguments, 1: anything else). */
export class CtlError extends ProxyError {
  constructor(
    message: string,
    readonly exitStatus = 1,
  ) {
    super('SHAPER_ERR_CTL', message);
  }
}

/** A usage error: the message, then the usage text; exit status 2. */
export function usage(message: string): CtlError {
  return new CtlError(`${message}\n\n${USAGE}`, 2);
}
