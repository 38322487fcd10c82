// Builds the workflow bundle once, so each scenario's worker skips webpack.
//
// Our workflow files live outside any node_modules tree (the SDK sits in
// .deps/npm/node_modules), so webpack is told where to resolve packages.
// Used two ways:
//   node lib/bundle.js OUT.js   -- run.sh writes the bundle once per run
//   require('./bundle').workerBundleOptions()  -- harness: {workflowBundle}
//     when GT_E2E_BUNDLE names a file, else {workflowsPath, bundlerOptions}
//     so a scenario run by hand still works (slower).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const WORKFLOWS = path.resolve(__dirname, '../workflows/index.js');

function modulePaths() {
  const dirs = (process.env.NODE_PATH || '').split(path.delimiter)
    .filter(Boolean);
  dirs.push(path.resolve(__dirname, '../../../.deps/npm/node_modules'));
  return dirs.map((d) => path.resolve(d));
}

function webpackConfigHook(config) {
  config.resolve = config.resolve || {};
  config.resolve.modules = [...(config.resolve.modules || []),
    ...modulePaths()];
  return config;
}

const bundlerOptions = { webpackConfigHook };

function workerBundleOptions() {
  const file = process.env.GT_E2E_BUNDLE;
  if (file && fs.existsSync(file)) {
    return { workflowBundle: { codePath: file } };
  }
  return { workflowsPath: WORKFLOWS, bundlerOptions };
}

async function main(out) {
  const { bundleWorkflowCode, DefaultLogger, Runtime } =
    require('@temporalio/worker');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS,
    webpackConfigHook,
    logger: new DefaultLogger('WARN'),
  });
  fs.writeFileSync(out, code);
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node lib/bundle.js OUT.js');
    process.exit(2);
  }
  main(out).then(() => process.exit(0), (err) => {
    console.error('workflow bundle failed:', err && err.stack || err);
    process.exit(1);
  });
}

module.exports = { workerBundleOptions, bundlerOptions, WORKFLOWS };
