"""Synthetic chest radiographs rendered from real Open-i annotations: a labelled stand-in for the image archive.

Modules, by job:
    geometry   coordinates (patient's right = image left in frontal views), seeds, soft shapes
    body       the per-image anatomy parameters (varied per image id), positioning, body-space fields
    textures   the vessel tree and mottle textures, built once per process
    canvas     the reduced-size canvas the normal anatomy is drawn on
    frontal, lateral   the normal chest of each view as an attenuation map
    terms      MeSH term -> finding (concept, side, zone, site, severity, spread)
    scene      the canvas findings draw on, zones, drawing primitives, recorded marks
    lungs, pleura, cardio, skeleton, devices   the findings' drawers, by body system
    findings   the registry of drawable concepts
    render     render(image_id, terms, view, size) -> (uint8 image, regions): body, anatomy, findings,
               tone; pure, deterministic
    corpus     the whole corpus: PNGs, regions.jsonl, SYNTHETIC.json, skip what is done
    sheet      contact sheets to look at

The images are synthetic stand-ins, not radiographs: never report numbers measured on them as
clinical accuracy.
"""
from pipelines.synth.findings import CONCEPTS, supported_concepts
from pipelines.synth.render import DEFAULT_SIZE, GENERATOR, GENERATOR_VERSION, Region, render, render_image

__all__ = ["CONCEPTS", "DEFAULT_SIZE", "GENERATOR", "GENERATOR_VERSION", "Region", "render", "render_image",
           "supported_concepts"]
