import { z } from 'zod';
import { ConfigError, commonEnvShape, envInteger, parseEnv } from '#shared';

describe('parseEnv with the common settings', () => {
  const schema = z.object(commonEnvShape);

  it('applies defaults and splits audiences', () => {
    const config = parseEnv(schema, { AUTH_AUDIENCE: 'https://a.example, https://b.example/' });
    expect(config).toEqual({
      PORT: 8080,
      LOG_LEVEL: 'info',
      AUTH_AUDIENCE: ['https://a.example', 'https://b.example/'],
      ID_TOKEN_CERTS_URL: 'https://www.googleapis.com/oauth2/v1/certs',
    });
  });

  it('reports every problem at once, naming variables and not values', () => {
    let thrown: unknown;
    try {
      parseEnv(schema, { PORT: '99999', LOG_LEVEL: 'loud', ID_TOKEN_CERTS_URL: 'ftp://secret-value' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const { problems, message } = thrown as ConfigError;
    expect(problems).toHaveLength(4);
    expect(message).toMatch(/PORT: must be a port number/);
    expect(message).toMatch(/LOG_LEVEL/);
    expect(message).toMatch(/AUTH_AUDIENCE: is required/);
    expect(message).toMatch(/ID_TOKEN_CERTS_URL/);
    expect(message).not.toContain('secret-value');
  });

  it('treats an empty variable as unset', () => {
    expect(() => parseEnv(schema, { AUTH_AUDIENCE: ' ' })).toThrow(/AUTH_AUDIENCE: is required/);
  });
});

describe('envInteger', () => {
  const schema = z.object({ N: envInteger(1, 300) });

  it.each([
    ['1', 1],
    ['300', 300],
    ['007', 7],
  ])('reads %j as %d', (value, expected) => {
    expect(parseEnv(schema, { N: value }).N).toBe(expected);
  });

  it.each(['0', '301', '-1', '1.5', '1e2', '0x10', ' 12', '99999999999999999999'])('refuses %j', (value) => {
    expect(() => parseEnv(schema, { N: value })).toThrow('N: must be a whole number from 1 to 300');
  });
});
