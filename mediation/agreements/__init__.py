"""Mediation agreements, judicial confirmation and evidence bundles (issue 5; R15-R28).

Modules (services take an `AsyncSession` and plain arguments, return dataclasses, raise `mediation.errors`):

- content, templates   the structured agreement (R15), validation of missing fields and vague terms, templates
- agreement            drafts, versions, finalization (renders the PDF the signers sign)
- payloads, signing    what is signed, party / mediator signatures, effect + RFC 3161 timestamp, refusal (R16, R17)
- pdf, seal            reportlab rendering with an embedded CJK font; the center's PAdES seal (pyHanko)
- pki, tsa, notary     the dev PKI (root, seal, TSA), timestamp authorities, settings and mediator keys
- courts               the court directory and CPL 205 venue rules (R22)
- confirmation, package, judging   application (R21, R23, R24), package, court queue and ruling (R25, R26)
- zipfmt, bundle, verify           the canonical bundle zip, its assembly, and the offline verifier
- models               the tables
"""
