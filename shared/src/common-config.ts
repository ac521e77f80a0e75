import net from 'node:net';
import { z } from 'zod';
import { GOOGLE_PEM_CERTS_URL } from './id-token-verifier.js';
import { envInteger } from './parse-env.js';

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
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    )
    .refine((list) => list.length > 0, 'is required: the service URL callers request identity tokens for')
    .refine(
      (list) => list.every((entry) => /^https?:\/\/\S+$/.test(entry)),
      'each audience must be an http(s) URL',
    ),
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
