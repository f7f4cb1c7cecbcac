/**
 * Loaded with `--import` into an agent under test: appends the URL of every module the process
 * loads (ESM and CommonJS, through the module hooks) to the file named by VIGIL_TEST_MODULE_LOG.
 */
import { appendFileSync } from "node:fs";
import { registerHooks } from "node:module";

const log = process.env.VIGIL_TEST_MODULE_LOG;
if (log) {
  registerHooks({
    load(url, context, next) {
      appendFileSync(log, `${url}\n`);
      return next(url, context);
    },
  });
}
