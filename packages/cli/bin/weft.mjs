#!/usr/bin/env node
// The weft command. Runs the built CLI (dist/); `pnpm build` makes it.
import "../dist/bin.js"
