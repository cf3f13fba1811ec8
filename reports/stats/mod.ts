/**
 * Statistics for PEFT studies: omnibus tests, pairwise tests, corrections, effect sizes,
 * resampling, matching and plain-language verdicts.
 * @module
 */
export * from "./describe.ts";
export * from "./dists.ts";
export * from "./kruskal.ts";
export * from "./anova.ts";
export * from "./anova2.ts";
export * from "./levene.ts";
export * from "./mann_whitney.ts";
export * from "./wilcoxon.ts";
export * from "./correction.ts";
export * from "./effect_size.ts";
export * from "./bootstrap.ts";
export * from "./randomization.ts";
export * from "./superscripts.ts";
export * from "./paired.ts";
export * from "./verdict.ts";
export * from "./matching.ts";
export * from "./factorial.ts";
