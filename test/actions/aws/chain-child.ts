/**
 * Run by credential-chain.test.ts in a child process, so the AWS SDK's default chain reads an
 * environment made for the case and no state leaks between cases: applies aws:revoke_role_sessions
 * twice against the IAM fake (the second must reuse the cached credentials) and prints the outcomes.
 */
import { awsProvider } from "../../../src/actions/aws/provider.ts";
import { revokeRoleSessionsAction } from "../../../src/actions/aws/revoke-role-sessions.ts";
import { actionContext, providerContext, request } from "../../helpers/action-context.ts";

const ctx = providerContext("aws");
const config = awsProvider.configSchema.parse({
  endpoint: process.env.VIGIL_TEST_IAM_ENDPOINT,
  region: "eu-central-1",
  ...(process.env.VIGIL_TEST_STS_ENDPOINT ? { sts_endpoint: process.env.VIGIL_TEST_STS_ENDPOINT } : {}),
  ...(process.env.VIGIL_TEST_PROFILE ? { profile: process.env.VIGIL_TEST_PROFILE } : {}),
  ...(process.env.VIGIL_TEST_TIMEOUT ? { timeout: process.env.VIGIL_TEST_TIMEOUT } : {}),
});
const client = awsProvider.create(config, ctx);
const action = revokeRoleSessionsAction.create(revokeRoleSessionsAction.configSchema.parse({}), actionContext(client));
const req = request({ subject: { attributes: { aws_role: "app" } } });
const out: unknown[] = [];
try {
  for (let i = 0; i < 2; i++) out.push(await action.apply(req));
  out.push({ plan_has_token_header: "X-Amz-Security-Token" in (action.plan(req)[0]?.headers ?? {}) });
} catch (err) {
  out.push({ error: (err as Error).message, code: (err as { code?: string }).code });
}
await ctx.http.close();
// A credential request the SDK left hanging would keep this process alive.
process.stdout.write(JSON.stringify(out), () => process.exit(0));
