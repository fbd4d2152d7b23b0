/**
 * The memory store against the store contract.
 */
import * as MemoryStore from "../src/MemoryStore.js"
import { storeConformance } from "./StoreConformance.js"

storeConformance("memory", () => MemoryStore.layer)
