import type { IapIdentity } from './iap-verifier.js';

/** Who may see a page behind IAP: people by email, and Google Workspace domains by their `hd` claim. */
export interface IapViewers {
  /** Lower-cased emails, matched exactly. */
  readonly emails: ReadonlySet<string>;
  /** Lower-cased domains, matched against the assertion's `hd` claim only. */
  readonly domains: ReadonlySet<string>;
}

/** Thrown by {@link parseIapViewers} with every entry that is neither an email nor `domain:NAME`. */
export class IapViewersError extends Error {
  override readonly name = 'IapViewersError';

  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

const EMAIL = /^[^\s@,:]+@[a-z0-9.-]+\.[a-z]{2,}$/i;
const DOMAIN = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/**
 * Parses a comma-separated viewer list such as `alice@example.com, domain:example.com`. An entry is an email
 * (optionally written `user:alice@example.com`, as IAM writes members) or `domain:NAME`, a Google Workspace
 * domain. A bare name without `@` is refused rather than guessed at: `example.com` could mean the domain or a
 * typo, and the difference decides who gets in.
 */
export function parseIapViewers(text: string): IapViewers {
  const emails = new Set<string>();
  const domains = new Set<string>();
  const problems: string[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const lower = entry.toLowerCase();
    if (lower.startsWith('domain:')) {
      const domain = lower.slice('domain:'.length);
      if (DOMAIN.test(domain)) domains.add(domain);
      else
        problems.push(`${JSON.stringify(entry)} is not domain:NAME with a domain name such as example.com`);
      continue;
    }
    const email = lower.startsWith('user:') ? lower.slice('user:'.length) : lower;
    if (EMAIL.test(email)) emails.add(email);
    else problems.push(`${JSON.stringify(entry)} is neither an email nor domain:NAME`);
  }
  if (problems.length > 0) throw new IapViewersError(problems);
  return { emails, domains };
}

/**
 * True when `identity` may see the page: its email is listed (compared without regard to case), or its
 * hosted domain `hd` is. The email's suffix is never used for a domain: `alice@example.com` at a consumer
 * account (no `hd`) is not a member of the `example.com` Workspace, and neither is `alice@evil.example.com`.
 * https://cloud.google.com/iap/docs/signed-headers-howto#verifying_the_jwt_payload
 */
export function isIapViewer(viewers: IapViewers, identity: IapIdentity): boolean {
  if (viewers.emails.has(identity.email.toLowerCase())) return true;
  return identity.hd !== undefined && viewers.domains.has(identity.hd.toLowerCase());
}
