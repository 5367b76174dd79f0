"""The paper's published numbers (Belaiche et al., 2020), for the column next to ours.

Accuracies are fractions of the paper's 241 pooled LOSO test samples (60.17% = 145/241).
"""

from __future__ import annotations

COMPOSITE = "megc2018"
"""The data of the paper's numbers (Tables 3-9, Figure 7): MEGC 2018's five objective classes.
A run on another composite shows no paper column (its numbers would compare other classes)."""


def comparable(composite: str) -> bool:
    """Whether a run on ``composite`` can stand beside the paper's numbers."""
    return composite == COMPOSITE


PAPER_DATA_TEXT = (
    "The paper's columns are blank: its numbers are on the MEGC 2018 composite's five objective "
    "classes, and this run is on {title}."
)

# Table 3: ResNet depth study, keyed by conv layers -> (parameters, accuracy).
TABLE3: dict[int, tuple[int, float]] = {
    17: (10_670_932, 0.5726),
    15: (5_400_725, 0.5726),
    13: (2_790_149, 0.6058),
    11: (1_608_965, 0.5934),
    9: (694_277, 0.6017),
    7: (398_597, 0.6100),
    5: (178_309, 0.5851),
    3: (104_197, 0.6017),
    1: (91_525, 0.5892),
}

# Table 4: input study, keyed by representation -> accuracy for 1..4 CL.
TABLE4: dict[str, tuple[float, float, float, float]] = {
    "vx": (0.5224, 0.5434, 0.5392, 0.5350),
    "vy": (0.5809, 0.5934, 0.6017, 0.6017),
    "vxvy": (0.5851, 0.5975, 0.6017, 0.5809),
    "mag": (0.5809, 0.5892, 0.5934, 0.5934),
}
REPRESENTATION_NAMES = {"vx": "Vx", "vy": "Vy", "vxvy": "Vx-Vy", "mag": "M", "vxvym": "Vx-Vy-M"}

# Tables 5-7: cosine similarity of penultimate features (2 samples x 5 classes), rows/cols
# happiness, surprise, anger, disgust, sadness.
SIMILARITY: dict[str, tuple[tuple[float, ...], ...]] = {
    "vy-3cl": (  # Table 5
        (0.6007, 0.1320, 0.0574, 0.0146, 0.1154),
        (0.1320, 0.5572, 0.0485, 0.0667, 0.1415),
        (0.0574, 0.0485, 0.5260, 0.0318, 0.0698),
        (0.0146, 0.0667, 0.0318, 0.5663, 0.0159),
        (0.1154, 0.1415, 0.0698, 0.0159, 0.5099),
    ),
    "vxvy-3cl": (  # Table 6
        (0.5615, 0.1700, 0.1171, 0.1155, 0.1195),
        (0.1700, 0.5831, 0.1432, 0.1502, 0.1618),
        (0.1171, 0.1432, 0.5672, 0.1176, 0.1503),
        (0.1155, 0.1502, 0.1176, 0.5447, 0.1225),
        (0.1195, 0.1618, 0.1503, 0.1225, 0.5443),
    ),
    "resnet8": (  # Table 7
        (0.8464, 0.3966, 0.3860, 0.3126, 0.2960),
        (0.3966, 0.8159, 0.4040, 0.3362, 0.3324),
        (0.3860, 0.4040, 0.8344, 0.3654, 0.3307),
        (0.3126, 0.3362, 0.3654, 0.8598, 0.2363),
        (0.2960, 0.3324, 0.3307, 0.2363, 0.9343),
    ),
}
SIMILARITY_TABLES = {"vy-3cl": 5, "vxvy-3cl": 6, "resnet8": 7}

# Figure 7: confusion matrix of Vy-3CL, row-normalised (rows true, columns predicted).
FIGURE7: tuple[tuple[float, ...], ...] = (
    (0.438, 0.104, 0.208, 0.083, 0.167),
    (0.107, 0.321, 0.357, 0.071, 0.143),
    (0.026, 0.044, 0.833, 0.070, 0.026),
    (0.074, 0.077, 0.407, 0.407, 0.037),
    (0.208, 0.125, 0.292, 0.000, 0.375),
)

# Table 8: accuracy of the paper's method against the literature (5 objective classes, LOSO).
TABLE8: tuple[tuple[str, float], ...] = (
    ("LBP-TOP [27]", 0.4229),
    ("Khor et al. [27]", 0.5700),
    ("Peng et al. [39]", 0.7470),
    ("Belaiche et al. 2020 (Vy-3CL)", 0.6017),
)

# Table 9: parameters (filters) of the shallow CNNs; 333,121 for 1-channel 3 CL is a slip
# in the paper (the architecture of the other seven cells gives 331,301; docs/networks.md).
TABLE9: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((82_373, 16), (168_997, 48), (333_121, 112), (712_933, 240)),
    2: ((165_541, 32), (348_005, 96), (709_477, 224), (1_620_197, 480)),
}

# Section 4.5: time to classify one clip on a GTX 1060 with MATLAB 2018a, milliseconds.
TIMING_MS = {"flow": 11.8, "network": 12.8, "total": 24.6}

# MEGC 2019 composite (SMIC-HS + CASME II + SAMM, 3 classes, LOSO over 68 subjects): STSTNet's
# published UF1 and UAR (Liong et al., FG 2019, Table 3), whole composite and each part.
MEGC2019_STSTNET: dict[str, tuple[float, float]] = {
    "all": (0.7353, 0.7605),
    "smic": (0.6801, 0.7013),
    "casme2": (0.8382, 0.8686),
    "samm": (0.6588, 0.6810),
}
# The Micro-Expression Benchmark's leak-free comparison (Varanka et al.): UF1 on the whole
# composite with a fixed number of epochs, against picking each subject's best test epoch.
MEB_FIXED_VS_BEST_EPOCH: dict[str, tuple[float, float]] = {
    "STSTNet": (0.713, 0.774),
    "OFF-ApexNet": (0.703, 0.839),
}

# CAS(ME)^3 Part A (Li et al., TPAMI 2022), LOSO: what could be verified of published results.
# Micron-BERT (Nguyen et al., CVPR 2023) as Papers with Code lists its paper's CASME3 results:
# 7 classes F1 32.64; 3 and 4 classes 61.25 and 49.13 under a metric that page calls "test
# accuracy" (which of the paper's columns that is could not be checked: shown as listed). The
# CAS(ME)^3 paper's own baselines and later work could not be read from here; not shown.
CASME3_MICRON_BERT: dict[int, dict[str, float]] = {
    7: {"uf1": 0.3264},
    4: {"as listed": 0.4913},
    3: {"as listed": 0.6125},
}
CASME3_MICRON_BERT_SOURCE = (
    "Micron-BERT (Nguyen et al., CVPR 2023), as listed by Papers with Code "
    "(paperswithcode.com/paper/micron-bert-bert-based-facial-micro)"
)

# MEGC 2018's hold-out-database evaluation as the Micro-Expression Benchmark ran it
# (tvaranka/meb, notebook "Table 10. Hold-out database"; Varanka et al.): UAR trained on CASME II
# and tested on SAMM, and the reverse. MEB trains on objective classes derived from action units,
# so its class counts differ from the spreadsheets' (its CASME II has 194 samples).
MEB_HOLDOUT_UAR: dict[str, tuple[float, float]] = {
    "SSSNet": (0.6988, 0.562),
    "ResNet18": (0.4325, 0.377),
    "ResNet34": (0.4397, 0.4793),
}

# CAS(ME)^3 Part A recognition, UF1 and UAR for 4 and 7 classes, as SFAMNet's authors tabulate
# them (Liong et al., "SFAMNet: A Scene Flow Attention-based Micro-expression Network"; table
# images/result_ME_recog.png of github.com/genbing99/SFAMNet, 2023-04-14). The row "Li et al."
# (an RGB-D AlexNet) is by name and method the CAS(ME)^3 authors' baseline; SFAMNet's reference
# list could not be read here. Inputs: RGB-D images, optical flow (as merjax's networks read), or
# scene flow (optical flow + depth). Key: (method, input) -> {classes: (uf1, uar)}.
CASME3_SFAMNET_TABLE: dict[tuple[str, str], dict[int, tuple[float, float]]] = {
    ("AlexNet (Li et al.)", "RGB-D image"): {4: (0.3001, 0.2982), 7: (0.1773, 0.1829)},
    ("STSTNet", "RGB-D image"): {4: (0.3795, 0.3792)},
    ("RCN-A", "optical flow"): {4: (0.4002, 0.4229), 7: (0.1892, 0.1879)},
    ("MEAN", "optical flow"): {4: (0.3894, 0.4004), 7: (0.1994, 0.1929)},
    ("SFAMNet", "optical flow"): {4: (0.3853, 0.4142), 7: (0.1778, 0.1860)},
    ("SFAMNet", "scene flow + optical flow"): {4: (0.4462, 0.4797), 7: (0.2365, 0.2373)},
}
CASME3_SFAMNET_SOURCE = (
    "SFAMNet (Liong et al.), results table in the authors' repository github.com/genbing99/SFAMNet"
)


# Spotting, F1 at IoU >= 0.5 as MEGC scores it; a key is absent where the source gives no
# number. Protocols differ and are named per row: "whole database" is the authors' subject-wise
# validation over the whole database, as merjax's LOSO scores (the tables do not show the split:
# not checked), "MEGC 2022 unseen test set" the challenge's held-back videos (its CAS_Test and
# SAMM_Test parts), on which no method could tune.
# Sources, each read from the authors' own repository:
# - SOFTNet (Liong et al., FG 2021): its comparison table (images/result.PNG of
#   github.com/genbing99/SoftNet-SpotME), including the MEGC 2020 baseline as it lists it;
# - MEAN (Liong et al., Signal Processing: Image Communication 2022): micro-expression spotting
#   F1 and STRS (images/detail_result.png of github.com/genbing99/MEAN_Spot-then-recognize; the
#   table does not say which class set its analysis used);
# - SFAMNet's CAS(ME)^3 tables (github.com/genbing99/SFAMNet): micro spotting F1, and STRS of
#   spot-then-recognize with 4 classes (the source has 7 classes too);
# - the MEGC 2022 baseline, a 3D-CNN (Yap et al., ACM MM 2022), on the challenge's unseen test
#   set, as SL-Swin's authors tabulate it (He et al., Electronics 2023;
#   github.com/eddiehe99/pytorch-expression-spotting).
SPOTTING_PUBLISHED: list[dict[str, str | float]] = [
    # database, method, protocol, micro F1, macro F1, overall F1, STRS (with its class set)
    {
        "database": "casme_sq",
        "method": "MEGC 2020 baseline (as SOFTNet lists it)",
        "protocol": "whole database",
        "micro": 0.0082,
        "macro": 0.1196,
        "overall": 0.0376,
    },
    {
        "database": "casme_sq",
        "method": "SOFTNet",
        "protocol": "whole database",
        "micro": 0.1173,
        "macro": 0.2410,
        "overall": 0.2022,
    },
    {
        "database": "casme_sq",
        "method": "MEAN",
        "protocol": "whole database",
        "micro": 0.1214,
        "strs": 0.0809,
    },
    {
        "database": "samm_lv",
        "method": "MEGC 2020 baseline (as SOFTNet lists it)",
        "protocol": "whole database",
        "micro": 0.0364,
        "macro": 0.0629,
        "overall": 0.0445,
    },
    {
        "database": "samm_lv",
        "method": "SOFTNet",
        "protocol": "whole database",
        "micro": 0.1520,
        "macro": 0.2169,
        "overall": 0.1881,
    },
    {
        "database": "samm_lv",
        "method": "MEAN",
        "protocol": "whole database",
        "micro": 0.0949,
        "strs": 0.0499,
    },
    {
        "database": "casme3",
        "method": "MEAN (optical flow)",
        "protocol": "whole database (SFAMNet's run)",
        "micro": 0.0283,
        "strs": 0.0100,
        "strs_classes": 4,
    },
    {
        "database": "casme3",
        "method": "SFAMNet (optical flow)",
        "protocol": "whole database",
        "micro": 0.0591,
        "strs": 0.0149,
        "strs_classes": 4,
    },
    {
        "database": "casme3",
        "method": "SFAMNet (scene flow + optical flow)",
        "protocol": "whole database",
        "micro": 0.0716,
        "strs": 0.0331,
        "strs_classes": 4,
    },
    {
        "database": "megc2022_cas",
        "method": "3D-CNN, the MEGC 2022 baseline (Yap et al.)",
        "protocol": "MEGC 2022 unseen test set",
        "overall": 0.1739,
    },
    {
        "database": "megc2022_samm",
        "method": "3D-CNN, the MEGC 2022 baseline (Yap et al.)",
        "protocol": "MEGC 2022 unseen test set",
        "overall": 0.1176,
    },
]
SPOTTING_SOURCES = (
    "SOFTNet's comparison table (github.com/genbing99/SoftNet-SpotME), MEAN's "
    "(github.com/genbing99/MEAN_Spot-then-recognize), SFAMNet's (github.com/genbing99/SFAMNet), "
    "and SL-Swin's for the MEGC 2022 baseline (github.com/eddiehe99/pytorch-expression-spotting)"
)
