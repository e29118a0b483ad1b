"""The concepts the renderer can draw: name -> (modifier of the anatomy, drawer, an example Open-i term).

A concept is drawn in two optional steps: `modify(body, finding, rng)` changes the normal anatomy
before it is drawn (heart size, dome height, spine curve...), then `draw(scene, finding, rng)`
adds local density and returns the marks (pixel boxes/masks) that become the recorded regions.
Terms map onto concepts in `terms.py`; a term whose concept is not here is not drawn, and counted.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipelines.synth import cardio, devices, lungs, pleura, skeleton
from pipelines.synth.body import Body
from pipelines.synth.scene import Mark, Scene
from pipelines.synth.terms import Finding


@dataclass(frozen=True)
class Concept:
    """One drawable concept."""

    name: str
    draw: Callable[[Scene, Finding, np.random.Generator], list[Mark]]
    modify: Callable[[Body, Finding, np.random.Generator], None] | None = None
    example: str = ""                    # a real Open-i term drawn by this concept
    views: tuple[str, ...] = ("frontal", "lateral")   # views in which it is visible


def _c(name, draw, example, modify=None, views=("frontal", "lateral")) -> Concept:
    return Concept(name=name, draw=draw, modify=modify, example=example, views=views)


_ALL = [
    # lungs: opacities and lesions
    _c("opacity", lungs.draw_opacity, "Opacity/lung/base/left"),
    _c("density", lungs.draw_opacity, "Density/lung/upper lobe/right"),
    _c("airspace disease", lungs.draw_opacity, "Airspace Disease/lung/base/right"),
    _c("consolidation", lungs.draw_opacity, "Consolidation/lung/lower lobe/left"),
    _c("infiltrate", lungs.draw_opacity, "Infiltrate/lung/upper lobe/right/patchy"),
    _c("pneumonia", lungs.draw_opacity, "Pneumonia/lower lobe/right"),
    _c("nodule", lungs.draw_lesions, "Nodule/lung/upper lobe/right"),
    _c("mass", lungs.draw_lesions, "Mass/lung/upper lobe/left"),
    _c("granuloma", lungs.draw_lesions, "Granuloma/lung/lower lobe/right"),
    _c("calcified granuloma", lungs.draw_lesions, "Calcified Granuloma/lung/upper lobe/right"),
    _c("calcinosis", lungs.draw_calcinosis, "Calcinosis/lung/hilum/lymph nodes/right"),
    _c("atherosclerosis", lungs.draw_calcinosis, "Atherosclerosis/aorta"),
    _c("granulomatous disease", lungs.draw_granulomatous, "Granulomatous Disease"),
    _c("tuberculosis", lungs.draw_granulomatous, "Tuberculosis/lung/upper lobe/right"),
    _c("atelectasis", lungs.draw_atelectasis, "Pulmonary Atelectasis/base/left"),
    _c("cicatrix", lungs.draw_cicatrix, "Cicatrix/lung/apex/right"),
    _c("cavity", lungs.draw_cavity, "Cavitation/lung/upper lobe/right"),
    # lungs: patterns, vessels, air
    _c("markings", lungs.draw_markings, "Markings/bronchovascular"),
    _c("interstitial disease", lungs.draw_markings, "Lung Diseases, Interstitial"),
    _c("fibrosis", lungs.draw_markings, "Pulmonary Fibrosis/base/bilateral"),
    _c("bronchial thickening", lungs.draw_bronchial, "Thickening/bronchi"),
    _c("bronchiectasis", lungs.draw_bronchial, "Bronchiectasis/lower lobe/left"),
    _c("sarcoidosis", lungs.draw_sarcoidosis, "Sarcoidosis"),
    _c("pulmonary congestion", lungs.draw_edema, "Pulmonary Congestion/mild"),
    _c("pulmonary edema", lungs.draw_edema, "Pulmonary Edema/interstitial"),
    _c("hyperlucent lung", lungs.draw_hyperlucency, "Lung, Hyperlucent/right"),
    _c("bullae", lungs.draw_hyperlucency, "Bullous Emphysema/upper lobe/right"),
    _c("cysts", lungs.draw_hyperlucency, "Cysts/lung/left"),
    _c("lucency", lungs.draw_hyperlucency, "Lucency/lung/upper lobe/right/round"),
    _c("hypoinflation", lungs.lungs_region, "Lung/hypoinflation/severe", modify=lungs.modify_hypoinflation),
    _c("hyperdistention", lungs.lungs_region, "Lung/hyperdistention/severe", modify=lungs.modify_hyperinflation),
    _c("emphysema", lungs.draw_emphysema, "Emphysema", modify=lungs.modify_hyperinflation),
    _c("copd", lungs.draw_emphysema, "Pulmonary Disease, Chronic Obstructive", modify=lungs.modify_hyperinflation),
    _c("cystic fibrosis", lungs.draw_emphysema, "Cystic Fibrosis", modify=lungs.modify_hyperinflation),
    # pleura
    _c("pleural effusion", pleura.draw_effusion, "Pleural Effusion/right/large"),
    _c("blunted costophrenic angle", pleura.draw_effusion, "Costophrenic Angle/left/blunted"),
    _c("pleural thickening", pleura.draw_pleural_thickening, "Thickening/pleura/apex/right"),
    _c("pneumothorax", pleura.draw_pneumothorax, "Pneumothorax/left/moderate"),
    _c("hydropneumothorax", pleura.draw_pneumothorax, "Hydropneumothorax/right"),
    _c("azygos lobe", skeleton.draw_azygos, "Lung/azygos lobe", views=("frontal",)),
    # heart, mediastinum, aorta, hila
    _c("cardiomegaly", cardio.heart_region, "Cardiomegaly/severe", modify=cardio.modify_heart),
    _c("pericardial effusion", cardio.heart_region, "Pericardial Effusion", modify=cardio.modify_heart),
    _c("small heart", cardio.heart_region, "Heart/small", modify=cardio.modify_heart),
    _c("heart failure", cardio.heart_region, "Heart Failure", modify=cardio.modify_heart),
    _c("epicardial fat", cardio.draw_epicardial_fat, "Epicardial Fat"),
    _c("tortuous aorta", cardio.aorta_region, "Aorta/tortuous/severe", modify=cardio.modify_aorta),
    _c("aortic aneurysm", cardio.aorta_region, "Aortic Aneurysm", modify=cardio.modify_aorta),
    _c("mediastinal widening", cardio.mediastinum_region, "Mediastinum/prominent", modify=cardio.modify_mediastinum,
       views=("frontal",)),
    _c("mediastinal shift", cardio.shift_region, "Shift/mediastinum/left", modify=cardio.modify_shift,
       views=("frontal",)),
    _c("volume loss", cardio.shift_region, "Volume Loss/lung/right", modify=cardio.modify_shift, views=("frontal",)),
    _c("pneumonectomy", cardio.shift_region, "Pneumonectomy/left", modify=cardio.modify_shift, views=("frontal",)),
    _c("lymphadenopathy", cardio.draw_nodes, "Lymph Nodes/right/paratracheal/enlarged"),
    _c("hilar enlargement", cardio.draw_hilar, "Lung/hilum/bilateral/prominent"),
    _c("pulmonary artery enlargement", cardio.draw_hilar, "Pulmonary Artery/enlarged"),
    _c("pneumomediastinum", cardio.draw_pneumomediastinum, "Mediastinal Emphysema"),
    # diaphragm and abdomen
    _c("elevated diaphragm", cardio.diaphragm_region, "Diaphragm/right/elevated/severe",
       modify=cardio.modify_diaphragm),
    _c("flattened diaphragm", cardio.diaphragm_region, "Diaphragm/bilateral/flattened", modify=cardio.modify_diaphragm),
    _c("eventration", cardio.diaphragm_region, "Diaphragmatic Eventration/right", modify=cardio.modify_diaphragm),
    _c("hiatal hernia", cardio.draw_hiatal_hernia, "Hernia, Hiatal/large"),
    _c("diaphragmatic hernia", cardio.draw_bowel_gas, "Hernia, Diaphragmatic/left"),
    _c("colonic interposition", cardio.draw_bowel_gas, "Colonic Interposition"),
    _c("pneumoperitoneum", cardio.draw_pneumoperitoneum, "Pneumoperitoneum"),
    _c("gallstones", cardio.draw_gallstones, "Cholelithiasis"),
    _c("contrast", cardio.draw_contrast, "Contrast Media/abdomen"),
    # bones
    _c("degenerative spine", skeleton.draw_degenerative, "Thoracic Vertebrae/degenerative/severe"),
    _c("spondylosis", skeleton.draw_degenerative, "Spondylosis/thoracic vertebrae"),
    _c("osteophyte", skeleton.draw_degenerative, "Osteophyte/thoracic vertebrae/multiple"),
    _c("arthritis", skeleton.draw_degenerative, "Arthritis"),
    _c("dish", skeleton.draw_degenerative, "Hyperostosis, Diffuse Idiopathic Skeletal"),
    _c("scoliosis", skeleton.scoliosis_region, "Scoliosis/thoracic vertebrae/right/severe",
       modify=skeleton.modify_scoliosis, views=("frontal",)),
    _c("kyphosis", skeleton.kyphosis_region, "Kyphosis/thoracic vertebrae/severe", modify=skeleton.modify_kyphosis),
    _c("vertebral deformity", skeleton.vertebral_region, "Deformity/thoracic vertebrae/severe",
       modify=skeleton.modify_vertebral),
    _c("fracture", skeleton.draw_fracture, "Fractures, Bone/ribs/left/healed", modify=skeleton.modify_vertebral),
    _c("bone deformity", skeleton.draw_fracture, "Deformity/ribs/right/chronic"),
    _c("bone lesion", skeleton.draw_bone_lesion, "Expansile Bone Lesions/ribs/right"),
    _c("sclerosis", skeleton.draw_sclerosis, "Sclerosis/thoracic vertebrae"),
    _c("osteopenia", skeleton.whole_chest_region, "Bone Diseases, Metabolic", modify=skeleton.modify_bone_density),
    _c("spinal fusion", skeleton.draw_spinal_fusion, "Spinal Fusion/thoracic vertebrae"),
    _c("shoulder arthritis", skeleton.draw_shoulder, "Shoulder/right/degenerative/severe", views=("frontal",)),
    _c("dislocation", skeleton.draw_shoulder, "Dislocations/shoulder/right", views=("frontal",)),
    _c("pectus excavatum", skeleton.pectus_region, "Funnel Chest", modify=skeleton.modify_pectus),
    _c("pectus carinatum", skeleton.pectus_region, "Pectus Carinatum", modify=skeleton.modify_pectus,
       views=("lateral",)),
    # soft tissue and image
    _c("breast implants", skeleton.draw_breast_implants, "Breast Implants"),
    _c("mastectomy", skeleton.breast_region, "Mastectomy/right", modify=skeleton.modify_mastectomy),
    _c("nipple shadow", skeleton.draw_nipple, "Nipple Shadow/left"),
    _c("subcutaneous emphysema", skeleton.draw_subcutaneous_air, "Subcutaneous Emphysema/right"),
    _c("technical quality", skeleton.whole_chest_region, "Technical Quality of Image Unsatisfactory",
       modify=skeleton.modify_quality),
    # devices
    _c("catheter", devices.draw_catheter, "Catheters, Indwelling/right"),
    _c("tube", devices.draw_tube, "Tube, Inserted/trachea, carina"),
    _c("surgical instruments", devices.draw_surgical, "Surgical Instruments/mediastinum"),
    _c("sutures", devices.draw_surgical, "Sutures/lung/upper lobe/right"),
    _c("implanted device", devices.draw_pacemaker, "Implanted Medical Device/left"),
    _c("medical device", devices.draw_electrodes, "Medical Device"),
    _c("stent", devices.draw_stent, "Stents/coronary vessels"),
    _c("foreign body", devices.draw_foreign_body, "Foreign Bodies/lung/lower lobe/left"),
]

CONCEPTS: dict[str, Concept] = {c.name: c for c in _ALL}


def supported_concepts() -> list[str]:
    """Names of every concept the renderer draws, sorted."""
    return sorted(CONCEPTS)
