/**
 * Collects every secret a test handed out or received (identity tokens, registration and installation
 * tokens, JIT configs, keys) and finds any of them in log text. A token is also searched for by its
 * signature and payload parts, which identify it even when a logger cut the rest.
 */
export interface SecretAudit {
  /** Remembers secrets; JWTs are remembered whole and by part. */
  add(...secrets: Array<string | undefined>): void;
  /** The secrets (shortened, for messages) that occur in any of `texts`. */
  leaks(...texts: string[]): string[];
  readonly size: number;
}

const MIN_SECRET_LENGTH = 12;

export function createSecretAudit(): SecretAudit {
  const secrets = new Set<string>();
  return {
    add(...values) {
      for (const value of values) {
        if (value === undefined || value.length < MIN_SECRET_LENGTH) continue;
        secrets.add(value);
        const parts = value.split('.');
        if (parts.length === 3)
          for (const part of parts.slice(1)) if (part.length >= MIN_SECRET_LENGTH) secrets.add(part);
        // Multi-line secrets (PEM keys): every long line on its own.
        for (const line of value.split('\n'))
          if (line.length >= MIN_SECRET_LENGTH && !line.startsWith('-----')) secrets.add(line);
      }
    },
    leaks(...texts) {
      const text = texts.join('\n');
      return [...secrets]
        .filter((secret) => text.includes(secret))
        .map((secret) => `${secret.slice(0, 10)}… (${secret.length} chars)`);
    },
    get size() {
      return secrets.size;
    },
  };
}

/**
 * What secrets look like, for scanning text without knowing the secrets themselves: a JWT (identity
 * tokens, App JWTs), GitHub tokens, registration tokens, Google access tokens, PEM keys, a Bearer value.
 */
export const SECRET_SHAPES: ReadonlyArray<[string, RegExp]> = [
  ['a JWT', /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}/],
  ['a GitHub token', /\bgh[pousr]_[A-Za-z0-9_]{20,}/],
  ['a registration or remove token', /\b[A-Z0-9]{29}\b/],
  ['a Google access token', /\bya29\.[A-Za-z0-9._-]{10,}/],
  ['a PEM key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
  ['a Bearer value', /\b[Bb]earer\s+[A-Za-z0-9._~+/-]{20,}/],
];

/** The kinds of secret-shaped strings found in `texts`, each with a short excerpt. */
export function secretShapes(...texts: string[]): string[] {
  const text = texts.join('\n');
  return SECRET_SHAPES.flatMap(([kind, shape]) => {
    const match = shape.exec(text);
    return match ? [`${kind}: ${match[0].slice(0, 12)}…`] : [];
  });
}
