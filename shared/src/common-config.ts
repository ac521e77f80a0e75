import net from 'node:net';
import { z } from 'zod';
import { abbreviate } from './abbreviate.js';
import { GOOGLE_PEM_CERTS_URL } from './id-token-verifier.js';
import { envInteger } from './parse-env.js';
import { parseList } from './parse-list.js';

/** Settings every service has: where it listens, how it logs, and whose identity tokens it accepts. */
export interface CommonConfig {
  port: number;
  /** The address to listen on; all interfaces (`0.0.0.0`) when absent, as Cloud Run needs. */
  host?: string;
  logLevel: string;
  /** Accepted identity-token audiences, normally the service's own URL. */
  audiences: string[];
  certsUrl: string;
  /** For trace links in logs; optional. */
  projectId?: string;
  /**
   * Settings that start the service but are probably not what was meant (an empty allow list, a policy
   * left open): logged as warnings at every start by `runService`.
   */
  warnings?: readonly string[];
}

/**
 * What is wrong with one `AUTH_AUDIENCE` entry, or undefined. A VM asks its metadata server for a token with
 * `…/identity?audience=<value>`, and google-auth-library puts the value there without URL-encoding it
 * (https://cloud.google.com/compute/docs/instances/verifying-instance-identity#request_signature), so an
 * audience with a query, a fragment or a `+` reaches the metadata server as another audience: every token
 * would then be refused. Refusing it at start says what was meant instead.
 */
export function audienceProblem(entry: string): string | undefined {
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return `${JSON.stringify(abbreviate(entry))} is not a URL: each audience must be an http(s) URL, normally the service's own`;
  }
  // Checked first, and the value not shown: it would print the password.
  if (url.username !== '' || url.password !== '') {
    return 'an audience contains a user name or password: use the service URL alone';
  }
  const shown = JSON.stringify(abbreviate(entry));
  if (!/^https?:$/.test(url.protocol) || !/^https?:\/\/[^\s]+$/i.test(entry)) {
    return `${shown}: each audience must be an http(s) URL without spaces, normally the service's own`;
  }
  const plain = `${url.origin}${url.pathname === '/' ? '' : url.pathname}`;
  const meant = `; use the service URL alone, such as ${JSON.stringify(plain)}`;
  if (entry.includes('?')) {
    return `${shown} has a query string: VMs request tokens with the audience in a query of their own, unencoded, so no token would carry this audience${meant}`;
  }
  if (entry.includes('#'))
    return `${shown} has a fragment (#…), which never reaches the metadata server${meant}`;
  if (entry.includes('+')) {
    return `${shown} contains "+", which the metadata server reads as a space in the audience it signs${meant}`;
  }
  return undefined;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Variables of {@link CommonConfig}, to merge into a service's own schema. */
export const commonEnvShape = {
  PORT: envInteger(0, 65535, 'must be a port number').default(8080),
  HOST: z
    .string()
    .refine((value) => net.isIP(value) !== 0, 'must be an IP address to listen on, e.g. 127.0.0.1')
    .optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  AUTH_AUDIENCE: z
    .string({ error: 'is required: the service URL callers request identity tokens for' })
    .transform(parseList)
    .superRefine((list, ctx) => {
      if (list.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message: 'is required: the service URL callers request identity tokens for',
        });
      }
      for (const entry of list) {
        const problem = audienceProblem(entry);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      }
    }),
  ID_TOKEN_CERTS_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default(GOOGLE_PEM_CERTS_URL),
  GOOGLE_CLOUD_PROJECT: z.string().min(1).optional(),
};

/** Picks the common settings out of a parsed environment. */
export function commonConfigFrom(env: {
  PORT: number;
  HOST?: string | undefined;
  LOG_LEVEL: string;
  AUTH_AUDIENCE: string[];
  ID_TOKEN_CERTS_URL: string;
  GOOGLE_CLOUD_PROJECT?: string | undefined;
}): CommonConfig {
  const config: CommonConfig = {
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    audiences: env.AUTH_AUDIENCE,
    certsUrl: env.ID_TOKEN_CERTS_URL,
  };
  if (env.HOST !== undefined) config.host = env.HOST;
  if (env.GOOGLE_CLOUD_PROJECT !== undefined) config.projectId = env.GOOGLE_CLOUD_PROJECT;
  return config;
}
