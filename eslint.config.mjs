// Lint and format with Effect's rules (dprint through @effect/eslint-plugin), and make the
// package boundaries mechanical: core → runtime → cli, never the other way.
import effect from "@effect/eslint-plugin"
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript"
import importX from "eslint-plugin-import-x"
import tseslint from "typescript-eslint"

const restrict = (patterns) => ["error", { patterns }]

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/*.mjs", "**/*.js", "bench/results/**"] },
  {
    files: ["**/*.ts"],
    languageOptions: { parser: tseslint.parser },
    plugins: { "@effect": effect, "@typescript-eslint": tseslint.plugin, "import-x": importX },
    settings: {
      "import-x/resolver-next": [createTypeScriptImportResolver({ project: "tsconfig.json" })],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts"] }
    },
    rules: {
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/array-type": ["error", { default: "generic", readonly: "generic" }],
      "import-x/no-cycle": "error"
    }
  },
  {
    files: ["packages/core/src/**/*.ts"],
    rules: {
      "no-console": "error",
      "no-restricted-imports": restrict([
        { group: ["@weft/runtime", "@weft/runtime/*", "@weft/cli", "@weft/cli/*"], message: "core depends on effect only" },
        { group: ["node:*", "@effect/platform*", "@effect/sql*"], message: "core does no I/O" }
      ])
    }
  },
  {
    files: ["packages/runtime/src/**/*.ts"],
    rules: {
      "no-console": "error",
      "no-restricted-imports": restrict([
        { group: ["@weft/cli", "@weft/cli/*"], message: "runtime never imports cli" },
        { group: ["@weft/core/*"], message: "import @weft/core's public namespaces only" }
      ])
    }
  },
  {
    files: ["packages/cli/src/**/*.ts"],
    rules: {
      "no-console": "error",
      "no-restricted-imports": restrict([
        { group: ["@weft/core/*", "@weft/runtime/*"], message: "import the packages' public namespaces only" }
      ])
    }
  }
)
