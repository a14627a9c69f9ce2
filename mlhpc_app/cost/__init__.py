"""What a deployment and its jobs cost: the template-driven model, job costs and the Price List refresh."""
