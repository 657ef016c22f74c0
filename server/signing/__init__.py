"""The platform's signing key and PAdES signatures of the court's PDF documents
(mediation agreements, rulings, service certificates), and checking them offline."""
