package staffing

// PlaceSQL is the conditional insert of a place (tests run it directly
// against PostgreSQL, as the baseline of the sign-up storm bench).
var PlaceSQL = placeSQL
