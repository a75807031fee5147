import { describe, expect, it } from 'vitest';
import { projectGatewayUrl, projectOfHost } from './hosts.js';

describe('projectOfHost', () => {
  it.each([
    ['team-b.localhost:3000', 'localhost', 'team-b'],
    ['Team-B.LocalHost', 'localhost', 'team-b'],
    ['team-b.localhost.', 'localhost', 'team-b'],
    ['p.api.example.com', 'api.example.com', 'p'],
    ['a.b.localhost', 'localhost', 'a.b'],
    ['default.localhost', 'localhost', 'default'],
  ])('reads %s under %s as project %s', (host, domain, project) => {
    expect(projectOfHost(host, domain, 'default')).toBe(project);
  });

  it.each([
    [undefined, 'localhost'],
    ['localhost:3000', 'localhost'],
    ['127.0.0.1:8080', 'localhost'],
    ['[::1]:8080', 'localhost'],
    ['xlocalhost', 'localhost'],
    ['.localhost', 'localhost'],
    ['p.example.com', 'api.example.com'],
    ['api.example.com', 'api.example.com'],
  ])('serves %s (domain %s) the default project', (host, domain) => {
    expect(projectOfHost(host, domain, 'default')).toBe('default');
  });
});

describe('projectGatewayUrl', () => {
  it('keeps the gateway URL for the default project and names the subdomain for another', () => {
    expect(projectGatewayUrl('http://127.0.0.1:3000', 'localhost', 'default', 'default')).toBe(
      'http://127.0.0.1:3000',
    );
    expect(projectGatewayUrl('http://127.0.0.1:3000', 'localhost', 'team-b', 'default')).toBe(
      'http://team-b.localhost:3000',
    );
    expect(projectGatewayUrl('https://[::1]:443', 'api.example.com', 'p', 'default')).toBe(
      'https://p.api.example.com',
    );
  });
});
