package emulator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

const (
	pricingLocation   = "US East (N. Virginia)"
	pricingPublished  = "2026-08-01T00:00:00Z"
	onDemandTermCode  = "JRTCKXETXF"
	onDemandRateCode  = "6YS6EN2CT7"
	pricingMaxResults = 100
)

// pricedProduct is one product of the price list: its attributes (for filtering) and its JSON
// document, as GetProducts returns it in PriceList.
type pricedProduct struct {
	attributes map[string]string
	document   string
}

// products is the price list: one Linux, shared-tenancy, on-demand product per catalog type
// that has a price, in catalog order.
var products = sync.OnceValue(func() []pricedProduct {
	var out []pricedProduct
	for _, it := range catalog.All() {
		if it.OnDemandPriceUSD == 0 {
			continue
		}
		out = append(out, pricedProductFor(it))
	}
	return out
})

func pricedProductFor(it catalog.InstanceType) pricedProduct {
	sku := pricingSKU(it.Name)
	attrs := map[string]string{
		"servicecode":           "AmazonEC2",
		"servicename":           "Amazon Elastic Compute Cloud",
		"instanceType":          it.Name,
		"instanceFamily":        instanceFamily(it),
		"vcpu":                  strconv.Itoa(it.VCPU),
		"memory":                strconv.FormatFloat(float64(it.MemoryMiB)/1024, 'f', -1, 64) + " GiB",
		"location":              pricingLocation,
		"locationType":          "AWS Region",
		"regionCode":            Region,
		"operatingSystem":       "Linux",
		"tenancy":               "Shared",
		"preInstalledSw":        "NA",
		"capacitystatus":        "Used",
		"licenseModel":          "No License required",
		"marketoption":          "OnDemand",
		"operation":             "RunInstances",
		"usagetype":             "BoxUsage:" + it.Name,
		"currentGeneration":     "Yes",
		"processorArchitecture": "64-bit",
	}
	if it.GPU > 0 {
		attrs["gpu"] = strconv.Itoa(it.GPU)
	}
	price := strconv.FormatFloat(it.OnDemandPriceUSD, 'f', 10, 64)
	rate := sku + "." + onDemandTermCode + "." + onDemandRateCode
	doc := map[string]any{
		"product":     map[string]any{"productFamily": "Compute Instance", "attributes": attrs, "sku": sku},
		"serviceCode": "AmazonEC2",
		"terms": map[string]any{"OnDemand": map[string]any{
			sku + "." + onDemandTermCode: map[string]any{
				"priceDimensions": map[string]any{rate: map[string]any{
					"unit":         "Hrs",
					"endRange":     "Inf",
					"description":  fmt.Sprintf("$%s per On Demand Linux %s Instance Hour", strconv.FormatFloat(it.OnDemandPriceUSD, 'f', -1, 64), it.Name),
					"appliesTo":    []string{},
					"rateCode":     rate,
					"beginRange":   "0",
					"pricePerUnit": map[string]string{"USD": price},
				}},
				"sku":            sku,
				"effectiveDate":  pricingPublished,
				"offerTermCode":  onDemandTermCode,
				"termAttributes": map[string]string{},
			},
		}},
		"version":         "20260801000000",
		"publicationDate": pricingPublished,
	}
	b, _ := json.Marshal(doc)
	filterable := map[string]string{"ServiceCode": "AmazonEC2", "productFamily": "Compute Instance"}
	for k, v := range attrs {
		filterable[k] = v
	}
	return pricedProduct{attributes: filterable, document: string(b)}
}

// pricingSKU derives a stable 16-character SKU from the instance type.
func pricingSKU(name string) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	h := hash64("sku/" + name)
	b := make([]byte, 16)
	for i := range b {
		b[i] = alphabet[h%32]
		h = h/32 ^ uint64(i+1)*0x9e3779b97f4a7c15
	}
	return string(b)
}

// instanceFamily is the Pricing API's instanceFamily attribute, from the family's letters.
func instanceFamily(it catalog.InstanceType) string {
	prefix, _ := familyGeneration(it.Family)
	switch {
	case it.GPU > 0 || prefix == "p" || prefix == "g" || prefix == "gr":
		return "GPU instance"
	case prefix == "inf" || prefix == "trn" || prefix == "dl":
		return "Machine Learning ASIC Instances"
	case prefix == "f" || prefix == "vt":
		return "FPGA Instances"
	case prefix == "c" || prefix == "hpc":
		return "Compute optimized"
	case prefix == "r" || prefix == "x" || prefix == "z" || prefix == "u" || prefix == "u-":
		return "Memory optimized"
	case prefix == "i" || prefix == "d" || prefix == "h" || prefix == "im" || prefix == "is":
		return "Storage optimized"
	}
	return "General purpose"
}

type getProductsRequest struct {
	ServiceCode   *string         `json:"ServiceCode"`
	Filters       []pricingFilter `json:"Filters"`
	FormatVersion *string         `json:"FormatVersion"`
	NextToken     *string         `json:"NextToken"`
	MaxResults    *int            `json:"MaxResults"`
}

type pricingFilter struct {
	Type  string `json:"Type"`
	Field string `json:"Field"`
	Value string `json:"Value"`
}

type getProductsResponse struct {
	FormatVersion string   `json:"FormatVersion"`
	PriceList     []string `json:"PriceList"`
	NextToken     *string  `json:"NextToken,omitempty"`
}

func pricingInvalid(format string, args ...any) *apiError {
	return &apiError{Code: "InvalidParameterException", Message: fmt.Sprintf(format, args...)}
}

// getProducts answers GetProducts for ServiceCode AmazonEC2: Linux on-demand products of
// us-east-1 from the catalog's prices. Field names match case-insensitively, values too.
func (e *Emulator) getProducts(_ context.Context, _ *http.Request, body []byte) (any, *apiError) {
	var req getProductsRequest
	if apiErr := decodeJSON(body, &req); apiErr != nil {
		return nil, apiErr
	}
	if req.ServiceCode == nil || *req.ServiceCode == "" {
		return nil, pricingInvalid("Input validation failed: ServiceCode is required")
	}
	if *req.ServiceCode != "AmazonEC2" {
		return nil, &apiError{Code: "NotFoundException", Message: fmt.Sprintf("The service code %s is not priced by the emulator", *req.ServiceCode)}
	}
	if req.FormatVersion != nil && *req.FormatVersion != "aws_v1" {
		return nil, pricingInvalid("Input validation failed: FormatVersion must be aws_v1")
	}
	size := pricingMaxResults
	if req.MaxResults != nil {
		if *req.MaxResults < 1 || *req.MaxResults > pricingMaxResults {
			return nil, pricingInvalid("Input validation failed: MaxResults must be between 1 and %d", pricingMaxResults)
		}
		size = *req.MaxResults
	}
	for _, f := range req.Filters {
		if f.Field == "" {
			return nil, pricingInvalid("Input validation failed: Filter Field is required")
		}
		switch f.Type {
		case "TERM_MATCH", "EQUALS", "CONTAINS", "ANY_OF", "NONE_OF":
		default:
			return nil, pricingInvalid("Input validation failed: Filter Type %q is not valid", f.Type)
		}
	}
	var matched []string
	for _, p := range products() {
		if matchPricingFilters(req.Filters, p.attributes) {
			matched = append(matched, p.document)
		}
	}
	fingerprint := pricingFingerprint(req)
	offset := 0
	if req.NextToken != nil && *req.NextToken != "" {
		var ok bool
		if offset, ok = parsePricingToken(*req.NextToken, fingerprint); !ok || offset > len(matched) {
			return nil, &apiError{Code: "InvalidNextTokenException", Message: "The pagination token is invalid. Try again without a pagination token."}
		}
	}
	end := min(offset+size, len(matched))
	resp := getProductsResponse{FormatVersion: "aws_v1", PriceList: matched[offset:end]}
	if resp.PriceList == nil {
		resp.PriceList = []string{}
	}
	if end < len(matched) {
		token := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d|%x", end, fingerprint)))
		resp.NextToken = &token
	}
	return resp, nil
}

func matchPricingFilters(filters []pricingFilter, attrs map[string]string) bool {
	for _, f := range filters {
		var value string
		found := false
		for k, v := range attrs {
			if strings.EqualFold(k, f.Field) {
				value, found = v, true
				break
			}
		}
		want := strings.Split(f.Value, ",")
		switch f.Type {
		case "TERM_MATCH", "EQUALS":
			if !found || !strings.EqualFold(value, f.Value) {
				return false
			}
		case "CONTAINS":
			if !found || !strings.Contains(strings.ToLower(value), strings.ToLower(f.Value)) {
				return false
			}
		case "ANY_OF":
			if !found || !containsFold(want, value) {
				return false
			}
		case "NONE_OF":
			if found && containsFold(want, value) {
				return false
			}
		}
	}
	return true
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSpace(v), s) {
			return true
		}
	}
	return false
}

func pricingFingerprint(req getProductsRequest) uint64 {
	h := fnv.New64a()
	for _, f := range req.Filters {
		_, _ = fmt.Fprintf(h, "%s|%s|%s;", f.Type, f.Field, f.Value)
	}
	return h.Sum64()
}

func parsePricingToken(token string, fingerprint uint64) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	offsetStr, fp, ok := strings.Cut(string(raw), "|")
	if !ok || fp != strconv.FormatUint(fingerprint, 16) {
		return 0, false
	}
	offset, err := strconv.Atoi(offsetStr)
	return offset, err == nil && offset >= 0
}
