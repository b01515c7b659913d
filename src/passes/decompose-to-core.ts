// Lowers both IR flavours (torch.export's default IR and core ATen) to the op set in core-ops.ts.
// The view rules run here too: core ATen wraps matmuls in identity views and expands that hide the
// linear patterns until they are gone. (canonicalize-views still runs on its own, for other passes' output.)

import { attentionBiasRules } from "./attention-bias.js";
import { viewRules } from "./canonicalize-views.js";
import { activationRules } from "./decompositions/activation.js";
import { attentionRules } from "./decompositions/attention.js";
import { compositeRules } from "./decompositions/composite.js";
import { convolutionRules } from "./decompositions/convolution.js";
import { layoutRules } from "./decompositions/layout.js";
import { matmulRules } from "./decompositions/matmul.js";
import { miscRules } from "./decompositions/misc.js";
import { normalizationRules } from "./decompositions/normalization.js";
import { poolingRules } from "./decompositions/pooling.js";
import { rmsNormRules } from "./decompositions/rms-norm.js";
import { type Pass, rulePass } from "./pass.js";
import { ruleSet } from "./rewrite/rule.js";

export const decompositionRules = ruleSet(
  layoutRules,
  convolutionRules,
  matmulRules,
  normalizationRules,
  rmsNormRules,
  activationRules,
  poolingRules,
  miscRules,
  attentionRules,
  attentionBiasRules,
  compositeRules,
  viewRules,
);

export const decomposeToCore: Pass = rulePass(
  "decompose-to-core",
  "lower conv/linear/norm/activation/pooling overloads of either IR flavour to the core op set",
  decompositionRules,
);
